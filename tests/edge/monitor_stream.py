"""Streams of part results for the monitor tests, made the way the daemon makes them: a Verdict
through edge.daemon.payload.result_payload, with noise drawn from a seeded generator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.daemon.payload import result_payload
from edge.daemon.verdict import Verdict
from edge.monitor.frame_stats import FrameStats
from edge.registration.pose import Pose

PERIOD_S = 0.1  # 10 parts per second
START_WALL = 1_700_000_000.0


@dataclass(frozen=True)
class Line:
    """What a healthy line looks like, and how much each metric varies from part to part."""

    defect_rate: float = 0.02
    brightness: float = 0.40  # relative sd 1 %
    contrast: float = 0.35  # relative sd 2 %
    focus: float = 2.5  # relative sd 5 %
    pose: tuple[float, float, float] = (100.0, 80.0, 0.0)  # sd 1 px, 1 px, 0.5°
    confidence: float = 0.95  # sd 0.01
    score: float = 1.0  # log-normal, sd 10 %
    threshold: float = 1.6
    latency_ms: float = 40.0  # sd 5 ms


def part(line: Line, part_id: int, rng: np.random.Generator) -> dict[str, Any]:
    """One result payload."""
    defect = rng.random() < line.defect_rate
    score = line.score * float(np.exp(rng.normal(0, 0.1)))
    if defect:
        score = max(score * 2.0, line.threshold * 1.1)
    trigger_ns = part_id * int(PERIOD_S * 1e9)
    latency = max(1.0, float(rng.normal(line.latency_ms, 5.0)))
    x, y, angle = line.pose
    verdict = Verdict(
        part_id=part_id,
        verdict="NOK" if defect else "OK",
        reason="anomaly" if defect else "",
        trigger_ns=trigger_ns,
        trigger_wall=START_WALL + part_id * PERIOD_S,
        verdict_ns=trigger_ns + int(latency * 1e6),
        verdict_wall=START_WALL + part_id * PERIOD_S + latency / 1e3,
        score=score,
        threshold=line.threshold,
        latency_ms={"inspect": latency * 0.8, "total": latency},
        confidence=min(1.0, float(rng.normal(line.confidence, 0.01))),
        pose=Pose(
            float(rng.normal(x, 1.0)), float(rng.normal(y, 1.0)), float(rng.normal(angle, 0.5))
        ),
        frame=FrameStats(
            brightness=line.brightness * float(np.exp(rng.normal(0, 0.01))),
            contrast=line.contrast * float(np.exp(rng.normal(0, 0.02))),
            focus=line.focus * float(np.exp(rng.normal(0, 0.05))),
        ),
    )
    return result_payload(verdict, "cam-1")


def parts(line: Line, first: int, count: int, rng: np.random.Generator) -> Iterator[dict[str, Any]]:
    for part_id in range(first, first + count):
        yield part(line, part_id, rng)


def camera_fault(part_id: int) -> dict[str, Any]:
    """A failed grab: ERROR camera, no frame, nothing scored."""
    trigger_ns = part_id * int(PERIOD_S * 1e9)
    verdict = Verdict(
        part_id=part_id,
        verdict="ERROR",
        reason="camera",
        trigger_ns=trigger_ns,
        trigger_wall=START_WALL + part_id * PERIOD_S,
        verdict_ns=trigger_ns + 1_000_000,
        verdict_wall=START_WALL + part_id * PERIOD_S,
        latency_ms={"total": 1.0},
    )
    return result_payload(verdict, "cam-1")
