"""The MQTT payloads the daemon publishes: one result per part (edge/mqtt/result.schema.json,
checked by the tests), the retained engine description, answers to commands, periodic metrics,
and a component's change of state on `alert`:

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
RESPONSE_SCHEMA = "partsight.response/1"
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
        "confidence": finite_or_none(verdict.confidence),
        "pose": _pose(verdict),
        "frame": None if verdict.frame is None else verdict.frame.as_dict(),
    }


def engine_payload(
    engine: EngineInfo | None,
    threshold: float | None,
    *,
    signer: str | None = None,
    since_ns: int | None = None,
    since_wall: float | None = None,
) -> dict[str, Any]:
    """The retained `engine` message: what judges this station's parts, on what (the backend
    `auto` chose, and its precision), signed by whom, and since when (parts triggered at or
    after `active_since_monotonic_ns` go to it; null: since the daemon started)."""
    return {
        "schema": ENGINE_SCHEMA,
        "name": engine.name if engine else None,
        "version": engine.version if engine else None,
        "model_sha256": engine.model_sha256 if engine else None,
        "threshold": finite_or_none(threshold),
        "backend": engine.backend if engine else None,
        "precision": engine.precision if engine else None,
        "signer": signer,
        "active_since": None if since_wall is None else utc_iso(since_wall),
        "active_since_monotonic_ns": since_ns or None,
    }


def response_payload(
    *,
    command: str,
    request_id: str | None,
    ok: bool,
    error: str | None,
    engine: EngineInfo,
    since_ns: int,
    load_ms: float | None,
) -> dict[str, Any]:
    """The answer on `cmd/response` to a command (request_id echoed) or to a reload (SIGHUP,
    request_id null). `engine` is the engine judging parts after it: the new one, or the one
    that kept running when the command was refused (`error` says why)."""
    return {
        "schema": RESPONSE_SCHEMA,
        "command": command,
        "request_id": request_id,
        "ok": ok,
        "error": error,
        "engine": _engine(engine),
        "active_since_monotonic_ns": since_ns or None,
        "load_ms": None if load_ms is None else round(load_ms, 1),
    }


def _engine(engine: EngineInfo | None) -> dict[str, str] | None:
    if engine is None:
        return None
    return {"name": engine.name, "version": engine.version, "model_sha256": engine.model_sha256}


def _camera(camera: CameraInfo | None) -> dict[str, float | int] | None:
    # The schema wants all three or nothing (a replay has no exposure or gain).
    if camera is None or camera.frame_counter is None or camera.frame_counter < 0:
        return None
    exposure, gain = finite_or_none(camera.exposure_us), finite_or_none(camera.gain_db)
    if exposure is None or gain is None or exposure < 0:
        return None
    return {"frame_counter": camera.frame_counter, "exposure_us": exposure, "gain_db": gain}


def _pose(verdict: Verdict) -> dict[str, float] | None:
    pose = verdict.pose
    if pose is None:
        return None
    x, y, angle = finite_or_none(pose.x), finite_or_none(pose.y), finite_or_none(pose.angle_deg)
    if x is None or y is None or angle is None:
        return None
    return {"x": round(x, 3), "y": round(y, 3), "angle_deg": round(angle, 4)}


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
