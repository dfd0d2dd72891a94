"""[mqtt]: the broker connection, its credentials, and the disk-backed outbox.

The password is never written in the config: `password_file` names a file, or
`password_credential` a systemd credential ($CREDENTIALS_DIRECTORY/<name>, from the unit's
LoadCredential=). Either is read at load time into a SecretStr (`MqttConfig.password`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, ValidationInfo, model_validator

from edge.config.base import ConfigPath, ReadableFile, StrictModel, context_of
from edge.config.secrets import SecretCredential, SecretFile
from edge.config.station import StationConfig

if TYPE_CHECKING:
    from edge.mqtt.settings import MqttSettings


class MqttConfig(StrictModel):
    enabled: bool = Field(
        True, description="publish to the broker; false: no MQTT (the reject path never needs it)"
    )
    host: str = Field("localhost", min_length=1, description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker port (8883 is usual for TLS)")
    client_id: str = Field(
        "", description="MQTT client id; empty: partsight-<site>-<line>-<station>"
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
    publish_heatmaps: bool = Field(
        False, description="also publish each part's anomaly heatmap (compressed image)"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_outbox(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "outbox" not in data:
            data = {**data, "outbox": context_of(info).effective_state_dir() / "mqtt-outbox.sqlite"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        # The same rules MqttSettings enforces, found at load time instead of at connect.
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

    def to_settings(self, station: StationConfig) -> MqttSettings:
        """The edge.mqtt settings for this station. Imported here so that loading a config
        never needs paho-mqtt."""
        from edge.mqtt.settings import MqttSettings

        return MqttSettings(
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            keepalive_s=self.keepalive_s,
            username=self.username,
            password_file=self.password_file.path if self.password_file else None,
            password_credential=(
                self.password_credential.name if self.password_credential else None
            ),
            tls=self.tls,
            tls_ca_file=self.tls_ca_file,
            tls_cert_file=self.tls_cert_file,
            tls_key_file=self.tls_key_file,
            site=station.site,
            line=station.line,
            station=station.station,
            max_inflight=self.max_inflight,
            reconnect_min_s=self.reconnect_min_s,
            reconnect_max_s=self.reconnect_max_s,
            connect_timeout_s=self.connect_timeout_s,
        )
