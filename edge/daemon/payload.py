"""The MQTT payloads the daemon publishes: one result per part (edge/mqtt/result.schema.json,
checked by the tests), the retained engine description, periodic metrics, and a component's
change of state on `alert`:

    {"schema": "partsight.health/1", "station": ..., "time": ..., "component": "reject",
     "state": "down", "since": ..., "detail": "...", "retry_in_s": 0.5, "lost": 3,
     "recent": [101, 105, 130]}

(`recent`: the part ids that lost their reject pulse, or the outbox ids set aside for MQTT.)"""

from __future__ import annotations

import math
from typing import Any

from edge.daemon.verdict import CameraInfo, EngineInfo, Verdict, finite_or_none
from edge.utc import utc_iso
from hw.health import Health

RESULT_SCHEMA = "partsight.result/1"  # edge.mqtt.RESULT_SCHEMA_ID; not imported: no paho here
ENGINE_SCHEMA = "partsight.engine/1"
METRICS_SCHEMA = "partsight.metrics/1"
HEALTH_SCHEMA = "partsight.health/1"


def result_payload(verdict: Verdict, station: str) -> dict[str, Any]:
    """The `result` message for one part. Every field is present; unknown values are null."""
    return {
        "schema": RESULT_SCHEMA,
        "station": station,
        "part_id": verdict.part_id,
        "trigger_time": utc_iso(verdict.trigger_wall),
        "trigger_monotonic_ns": max(0, verdict.trigger_ns),
        "verdict_time": utc_iso(verdict.verdict_wall),
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "score": finite_or_none(verdict.score),
        "threshold": finite_or_none(verdict.threshold),
        "class": verdict.defect_class,
        "class_probability": finite_or_none(verdict.class_probability),
        "regions": [_region(r.as_dict()) for r in verdict.regions],
        "latency_ms": {
            name: round(ms, 3)
            for name, ms in verdict.latency_ms.items()
            if math.isfinite(ms) and ms >= 0
        },
        "engine": _engine(verdict.engine),
        "camera": _camera(verdict.camera),
    }


def engine_payload(engine: EngineInfo | None, threshold: float | None) -> dict[str, Any]:
    """The retained `engine` message: what judges this station's parts, and on what (the
    backend `auto` chose, and its precision)."""
    return {
        "schema": ENGINE_SCHEMA,
        "name": engine.name if engine else None,
        "version": engine.version if engine else None,
        "threshold": finite_or_none(threshold),
        "backend": engine.backend if engine else None,
        "precision": engine.precision if engine else None,
    }


def _engine(engine: EngineInfo | None) -> dict[str, str] | None:
    if engine is None:
        return None
    return {"name": engine.name, "version": engine.version}


def _camera(camera: CameraInfo | None) -> dict[str, float | int] | None:
    # The schema wants all three or nothing (a replay has no exposure or gain).
    if camera is None or camera.frame_counter is None or camera.frame_counter < 0:
        return None
    exposure, gain = finite_or_none(camera.exposure_us), finite_or_none(camera.gain_db)
    if exposure is None or gain is None or exposure < 0:
        return None
    return {"frame_counter": camera.frame_counter, "exposure_us": exposure, "gain_db": gain}


def _region(region: dict[str, float | int]) -> dict[str, float | int]:
    peak = finite_or_none(float(region["peak"]))
    return {
        "x": max(0, int(region["x"])),
        "y": max(0, int(region["y"])),
        "width": max(1, int(region["width"])),
        "height": max(1, int(region["height"])),
        "peak": 0.0 if peak is None else peak,
        "area_px": max(0, int(region["area_px"])),
    }


def health_alert(component: str, health: Health, station: str, now: float) -> dict[str, Any]:
    """The `alert` message for one component's change of state (hw.health.Health)."""
    return {
        "schema": HEALTH_SCHEMA,
        "station": station,
        "time": utc_iso(now),
        "component": component,
        **health.as_dict(),
    }
