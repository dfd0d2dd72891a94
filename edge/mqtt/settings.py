"""The MQTT connection settings (a plain frozen dataclass; the daemon's configuration maps onto
it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.mqtt.errors import MqttConfigError
from edge.mqtt.topics import Topics


@dataclass(frozen=True, kw_only=True)
class MqttSettings:
    host: str
    port: int = 1883
    client_id: str = ""  # "" means partsight-<site>-<line>-<station>, unique per station
    keepalive_s: int = 30  # the broker publishes the "offline" will ~1.5x this after a crash
    username: str | None = None
    # The password comes from a file (one line; a trailing newline is dropped) or from a
    # systemd credential, read from $CREDENTIALS_DIRECTORY/<name>. Never from the settings
    # themselves, so it never sits in a config file, a repr or a log line.
    password_file: Path | None = None
    password_credential: str | None = None
    tls: bool = False  # TLS with certificate and host-name verification; there is no insecure mode
    tls_ca_file: Path | None = None  # None: the system's trusted CAs
    tls_cert_file: Path | None = None  # client certificate, with tls_key_file
    tls_key_file: Path | None = None
    site: str
    line: str
    station: str
    max_inflight: int = 20  # durable messages sent but not yet acknowledged
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = 10.0  # TCP + TLS connect, and again for the broker's CONNACK

    def __post_init__(self) -> None:
        Topics(self.site, self.line, self.station)  # raises on a bad name
        if not self.host:
            raise MqttConfigError("MQTT host is empty")
        if not 0 < self.port < 65536:
            raise MqttConfigError(f"MQTT port {self.port} is not in 1..65535")
        if self.keepalive_s < 1:
            raise MqttConfigError(f"MQTT keepalive_s must be >= 1, got {self.keepalive_s}")
        if not 1 <= self.max_inflight <= 1000:
            raise MqttConfigError(f"MQTT max_inflight must be in 1..1000, got {self.max_inflight}")
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise MqttConfigError(
                "MQTT reconnect delays need 0 < reconnect_min_s <= reconnect_max_s, got "
                f"{self.reconnect_min_s} and {self.reconnect_max_s}"
            )
        if self.connect_timeout_s <= 0:
            raise MqttConfigError("MQTT connect_timeout_s must be > 0")
        if self.password_file is not None and self.password_credential is not None:
            raise MqttConfigError("set either MQTT password_file or password_credential, not both")
        has_password = self.password_file is not None or self.password_credential is not None
        if has_password and not self.username:
            raise MqttConfigError("an MQTT password needs a username")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise MqttConfigError("MQTT tls_cert_file and tls_key_file go together")
        tls_files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if not self.tls and any(f is not None for f in tls_files):
            raise MqttConfigError("MQTT TLS files are set but tls is off; set tls = true")

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"partsight-{self.site}-{self.line}-{self.station}"

    @property
    def topics(self) -> Topics:
        return Topics(self.site, self.line, self.station)
