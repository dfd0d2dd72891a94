"""Building verdicts: from an inspection, or for a part the engine never judged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge.daemon.verdict import (
    ANOMALY,
    NOK,
    OK,
    CameraInfo,
    EngineInfo,
    Verdict,
    finite_or_none,
)

_CLASSES = ("defect", "nuisance")


def with_total(latency: Mapping[str, float], trigger_ns: int, verdict_ns: int) -> dict[str, float]:
    out = dict(latency)
    out["total"] = max(0.0, (verdict_ns - trigger_ns) / 1e6)
    return out


def rejection(
    *,
    part_id: int,
    trigger_ns: int,
    trigger_wall: float,
    verdict: str,
    reason: str,
    detail: str,
    now_ns: int,
    now_wall: float,
    latency: Mapping[str, float] | None = None,
    camera: CameraInfo | None = None,
    engine: EngineInfo | None = None,
    source: str | None = None,
    score: float | None = None,
    threshold: float | None = None,
) -> Verdict:
    """A NOK or ERROR verdict decided without (or against) the engine's judgement."""
    return Verdict(
        part_id=part_id,
        verdict=verdict,
        reason=reason,
        trigger_ns=trigger_ns,
        trigger_wall=trigger_wall,
        verdict_ns=now_ns,
        verdict_wall=now_wall,
        score=score,
        threshold=threshold,
        latency_ms=with_total(latency or {}, trigger_ns, now_ns),
        camera=camera,
        engine=engine,
        source=source,
        detail=detail,
    )


def judged(
    *,
    part_id: int,
    trigger_ns: int,
    trigger_wall: float,
    inspection: Any,
    now_ns: int,
    now_wall: float,
    latency: Mapping[str, float],
    camera: CameraInfo | None,
    engine: EngineInfo | None,
    source: str | None,
) -> Verdict:
    """The engine's verdict on a part (edge.inspector.Inspection)."""
    verdict = NOK if inspection.verdict != OK else OK
    reason = str(inspection.reason or "") if verdict == NOK else ""
    defect_class = getattr(inspection, "defect_class", None)
    return Verdict(
        part_id=part_id,
        verdict=verdict,
        reason=reason or (ANOMALY if verdict == NOK else ""),
        trigger_ns=trigger_ns,
        trigger_wall=trigger_wall,
        verdict_ns=now_ns,
        verdict_wall=now_wall,
        score=_float(inspection.score),
        threshold=_float(inspection.threshold),
        regions=tuple(inspection.regions or ()),
        latency_ms=with_total(latency, trigger_ns, now_ns),
        camera=camera,
        engine=engine,
        defect_class=defect_class if defect_class in _CLASSES else None,
        class_probability=_float(getattr(inspection, "class_probability", None)),
        confidence=_float(getattr(inspection, "confidence", None)),
        pose=getattr(inspection, "pose", None),
        source=source,
    )


def _float(value: object) -> float | None:
    if value is None:
        return None
    try:
        return finite_or_none(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
