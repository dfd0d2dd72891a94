"""The payloads about the station itself: the retained `status`, and a component's change of
state on `alert`.

`status` (retained, QoS 1), JSON:

    {"schema": "partsight.status/1", "station": "housing-top", "client_id": "partsight-...",
     "state": "online", "time": "2024-05-01T12:00:00.000000Z",
     "health": {"camera": {"state": "up", ...}, "reject": {...}, "mqtt": {...}}}

`state` is "online" (every component up), "degraded" (one is down or in error: see `health`),
"stopped" (a clean shutdown) or "offline" (the last will: the daemon vanished). Each entry of
`health` is hw.health.Health.as_dict(). `client_id` lets a station notice another one publishing
under the same names (edge.mqtt.publisher). The daemon also publishes each change of a
component's state on `alert` (edge.daemon.payload.health_alert).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from edge.mqtt.topics import STATUS_DEGRADED, STATUS_ONLINE
from edge.utc import utc_iso
from hw.health import Health

STATUS_SCHEMA = "partsight.status/1"


def running_state(health: Mapping[str, Health]) -> str:
    """online when every component is up, else degraded."""
    return STATUS_ONLINE if all(h.ok for h in health.values()) else STATUS_DEGRADED


def status_payload(
    state: str,
    *,
    station: str,
    client_id: str,
    health: Mapping[str, Health] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    return {
        "schema": STATUS_SCHEMA,
        "station": station,
        "client_id": client_id,
        "state": state,
        "time": utc_iso(time.time() if now is None else now),
        "health": {name: h.as_dict() for name, h in (health or {}).items()},
    }
