"""What the daemon says about itself: the one-line systemd STATUS and the metrics payload."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from edge.daemon.counters import Snapshot
from edge.daemon.payload import METRICS_SCHEMA
from edge.utc import utc_iso
from hw.health import Health


class RateMeter:
    """Parts per second between two readings."""

    def __init__(self) -> None:
        self._at = time.monotonic()
        self._parts = 0
        self.rate = 0.0

    def update(self, parts: int) -> float:
        now = time.monotonic()
        if now - self._at > 0:
            self.rate = (parts - self._parts) / (now - self._at)
        self._at, self._parts = now, parts
        return self.rate


def status_line(
    snapshot: Snapshot, rate: float, health: Mapping[str, Health], alerts: int | None = None
) -> str:
    """e.g. `1234 parts (OK 1200, NOK 30, ERROR 4), 9.8/s, p99 41 ms, overload 0; camera up,
    reject DOWN (modbus 10.0.0.5:502 unit 1: write_registers 10: no answer within 200 ms;
    rejected parts are not thrown out; retry in 1.5 s; 3 lost), mqtt up, alerts 1` (alerts:
    active production-metric alerts, when the monitor runs)."""
    v = snapshot.verdicts
    p99 = "-" if snapshot.latency_ms_p99 is None else f"{snapshot.latency_ms_p99:.0f} ms"
    text = (
        f"{snapshot.parts} parts (OK {v.get('OK', 0)}, NOK {v.get('NOK', 0)}, "
        f"ERROR {v.get('ERROR', 0)}), {rate:.1f}/s, p99 {p99}, overload {snapshot.overload}"
    )
    if health:
        text += "; " + ", ".join(f"{name} {h.summary()}" for name, h in health.items())
    if alerts is not None:
        text += f", alerts {alerts}"
    return text


def metrics_payload(
    *,
    station: str,
    snapshot: Snapshot,
    rate: float,
    queues: dict[str, int],
    camera_stats: dict[str, int] | None,
    mqtt: Any | None,
    health: Mapping[str, Health],
    monitor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": METRICS_SCHEMA,
        "station": station,
        "time": utc_iso(time.time()),
        "parts_per_s": round(rate, 3),
        **snapshot.as_dict(),
        "queues": queues,
        "camera": camera_stats,
        "mqtt": _as_dict(mqtt),
        "health": {name: h.as_dict() for name, h in health.items()},
        "monitor": monitor,  # current values, baselines and charts (edge/monitor), or null
    }


def _as_dict(counters: Any | None) -> dict[str, Any] | None:
    """The publisher's counters (a dataclass snapshot), as JSON-ready values."""
    if counters is None or not is_dataclass(counters) or isinstance(counters, type):
        return None
    return asdict(counters)
