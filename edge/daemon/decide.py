"""Building verdicts: from an inspection, or for a part the engine never judged."""

from __future__ import annotations

from collections.abc import Mapping

from edge.daemon.verdict import CameraInfo, EngineInfo, Verdict, finite_or_none
from edge.inspection import Inspection


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
    inspection: Inspection,
    now_ns: int,
    now_wall: float,
    latency: Mapping[str, float],
    camera: CameraInfo | None,
    engine: EngineInfo | None,
    source: str | None,
) -> Verdict:
    """The engine's verdict on a part, as the engine decided it (edge.stages.decide)."""
    return Verdict(
        part_id=part_id,
        verdict=inspection.verdict,
        reason=inspection.reason,
        trigger_ns=trigger_ns,
        trigger_wall=trigger_wall,
        verdict_ns=now_ns,
        verdict_wall=now_wall,
        score=finite_or_none(inspection.score),
        threshold=finite_or_none(inspection.threshold),
        regions=tuple(inspection.regions),
        latency_ms=with_total(latency, trigger_ns, now_ns),
        camera=camera,
        engine=engine,
        defect_class=inspection.defect_class,
        class_probability=finite_or_none(inspection.class_probability),
        confidence=finite_or_none(inspection.confidence),
        pose=inspection.pose,
        source=source,
        detail=inspection.detail,
    )
