"""The MQTT client id: the configured one, or one unique to this machine and stable across
restarts.

A broker keeps one connection per client id: a second client connecting with the same id takes
the connection over. Two stations whose configuration was copied (same site, line and station)
would do that to each other all day, so the default id is not made of the names alone:

    partsight-<site>-<line>-<station>-<8 hex digits>

The digits come from /etc/machine-id, hashed with an application key the way systemd's
sd_id128_get_machine_app_specific() does (HMAC-SHA256 keyed by the machine id), so the machine id
itself is never published. A system without a machine id (some containers) gets a random suffix,
kept in <state_dir>/mqtt-client-id so that it survives restarts.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from edge.config.mqtt import MqttConfig
from edge.config.station import StationConfig
from edge.mqtt.errors import MqttConfigError

MACHINE_ID = Path("/etc/machine-id")
STATE_FILE = "mqtt-client-id"
_APP_KEY = b"partsight.mqtt-client-id"
_SUFFIX_LEN = 8


@dataclass(frozen=True)
class ClientId:
    value: str  # the id; with create=False and no suffix yet, a placeholder saying so
    source: str  # where it comes from, for check-config: "the configuration", "/etc/machine-id"


def client_id(
    config: MqttConfig,
    station: StationConfig,
    *,
    machine_id: Path = MACHINE_ID,
    create: bool = True,
) -> ClientId:
    """The client id the publisher uses. With create=False (check-config) nothing is written:
    a random suffix not created yet is shown as `<random, created at first start>`.
    MqttConfigError when the suffix file cannot be read or written."""
    if config.client_id:
        return ClientId(config.client_id, "the configuration")
    base = f"partsight-{station.site}-{station.line}-{station.station}"
    suffix = _machine_suffix(machine_id)
    if suffix is not None:
        return ClientId(f"{base}-{suffix}", str(machine_id))
    path = station.state_dir / STATE_FILE
    suffix = _stored_suffix(path)
    if suffix is None:
        if not create:
            return ClientId(f"{base}-<random, created at first start>", str(path))
        suffix = _store_new_suffix(path)
    return ClientId(f"{base}-{suffix}", str(path))


def _machine_suffix(path: Path) -> str | None:
    try:
        machine = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if len(machine) != 32 or not all(c in "0123456789abcdef" for c in machine):
        return None  # empty ("uninitialized") or not a machine id
    digest = hmac.new(bytes.fromhex(machine), _APP_KEY, sha256).hexdigest()
    return digest[:_SUFFIX_LEN]


def _stored_suffix(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise MqttConfigError(f"{path}: cannot read the MQTT client id suffix: {exc}") from exc
    if len(text) != _SUFFIX_LEN or not all(c in "0123456789abcdef" for c in text):
        raise MqttConfigError(f"{path}: not an MQTT client id suffix ({_SUFFIX_LEN} hex digits)")
    return text


def _store_new_suffix(path: Path) -> str:
    suffix = secrets.token_hex(_SUFFIX_LEN // 2)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="ascii") as f:
            f.write(suffix + "\n")
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise MqttConfigError(f"{path}: cannot store the MQTT client id suffix: {exc}") from exc
    return suffix
