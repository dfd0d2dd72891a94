"""The [mqtt] and [station] sections the publisher takes, built for tests (one place)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge.config.base import CONTEXT_KEY, LoadContext
from edge.config.mqtt import MqttConfig
from edge.config.station import StationConfig


def mqtt_config(
    host: str, port: int, *, environ: Mapping[str, str] | None = None, **changes: Any
) -> MqttConfig:
    """An [mqtt] section for `host:port` with quick reconnects; `changes` as in the TOML (a
    password file as a str path; a credential is looked up in `environ`). The outbox path is
    the caller's to open."""
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "client_id": "test-station",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.25,
        "connect_timeout_s": 2.0,
        "outbox": Path("unused-outbox.sqlite"),
    }
    context = LoadContext(base_dir=Path.cwd(), environ=environ or {})
    return MqttConfig.model_validate(values | changes, context={CONTEXT_KEY: context})


def station(site: str, line: str, name: str, state_dir: Path | None = None) -> StationConfig:
    return StationConfig(
        site=site, line=line, station=name, state_dir=state_dir or Path("/nonexistent/state")
    )
