"""[mqtt]: the broker connection, its credentials, and the disk-backed outbox.

The password is never written in the config: `password_file` names a file, or
`password_credential` a systemd credential ($CREDENTIALS_DIRECTORY/<name>, from the unit's
LoadCredential=). Either is read at load time into a SecretStr (`MqttConfig.password`), which
is what the publisher uses: the file is not read again.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from edge.config.base import ConfigPath, ReadableFile, StrictModel, context_of
from edge.config.secrets import SecretCredential, SecretFile


class MqttConfig(StrictModel):
    """Handed whole to edge.mqtt.MqttPublisher, with the [station] section."""

    enabled: bool = Field(
        True, description="publish to the broker; false: no MQTT (the reject path never needs it)"
    )
    host: str = Field("localhost", min_length=1, description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is usual for TLS)")
    client_id: str = Field(
        "",
        description="MQTT client id; empty: partsight-<site>-<line>-<station>-<8 hex digits "
        "unique to this machine> (from /etc/machine-id, else a random id kept in the state "
        "directory); `partsight check-config` prints the id used",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT version; 5 lets the broker announce its largest packet and say why it "
        "refuses a message",
    )
    max_packet_size: int | None = Field(
        None,
        ge=128,
        le=268435460,
        description="the broker's largest accepted packet, bytes, when it does not announce it "
        "(MQTT 3.1.1, or a shared broker's documented limit); the smaller of this and the "
        "announced one applies. A result that can never fit is set aside in the outbox",
    )
    keepalive_s: int = Field(
        30, ge=1, description="keep-alive; the broker publishes the 'offline' will ~1.5x this"
    )
    username: str | None = Field(None, min_length=1, description="user name, if the broker asks")
    password_file: SecretFile | None = Field(
        None, description="file holding the password (first line); read at load time"
    )
    password_credential: SecretCredential | None = Field(
        None,
        description="systemd credential holding the password ($CREDENTIALS_DIRECTORY/<name>, "
        "from LoadCredential=); read at load time",
    )
    tls: bool = Field(
        False, description="TLS with certificate and host-name verification (no insecure mode)"
    )
    tls_ca_file: ReadableFile | None = Field(
        None,
        description="CA certificate(s) the broker's certificate must chain to; "
        "omitted: the system's trusted CAs",
    )
    tls_cert_file: ReadableFile | None = Field(
        None, description="client certificate (with tls_key_file)"
    )
    tls_key_file: ReadableFile | None = Field(None, description="client certificate's private key")
    max_inflight: int = Field(
        20, ge=1, le=1000, description="durable messages sent but not yet acknowledged"
    )
    reconnect_min_s: float = Field(0.5, gt=0, description="first reconnect delay")
    reconnect_max_s: float = Field(30.0, gt=0, description="longest reconnect delay")
    connect_timeout_s: float = Field(
        10.0, gt=0, description="TCP + TLS connect, and again for the broker's CONNACK"
    )
    outbox: ConfigPath = Field(
        description="the disk-backed outbox (SQLite) results wait in until the broker has "
        "them; default: <state_dir>/mqtt-outbox.sqlite"
    )
    publish_heatmaps: Literal[False] = Field(
        False,
        description="heatmaps are not published yet (they need the engine's typed result on "
        "the line); only false is accepted",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_outbox(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "outbox" not in data:
            data = {**data, "outbox": context_of(info).effective_state_dir() / "mqtt-outbox.sqlite"}
        return data

    @field_validator("publish_heatmaps", mode="before")
    @classmethod
    def _no_heatmaps(cls, value: Any) -> Any:
        if value is True:
            raise ValueError(
                "heatmaps are not published yet (the line daemon does not carry a part's "
                "anomaly map to its outputs); remove the setting or set it to false"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.password_file is not None and self.password_credential is not None:
            raise ValueError("set either password_file or password_credential, not both")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        tls_files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if not self.tls and any(f is not None for f in tls_files):
            raise ValueError("TLS files are set but tls is false; set tls = true")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def password(self) -> SecretStr | None:
        """The password read at load time (`.get_secret_value()` to use it), or None."""
        source = self.password_file or self.password_credential
        return source.value if source is not None else None
