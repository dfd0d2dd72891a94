"""In-control baselines: what "usual" is for each metric, learnt on the line or at training.

A baseline is a mean and a standard deviation in the chart's own scale (the log of the value
for log metrics, degrees modulo 360 for an angle), or a rate p0. It comes from:

- the warm-up: the first N observations of the metric on the line (RunningMoments; for an
  angle, deviations from the first angle, wrapped, so a part lying at ±180° is not split);
- the engine's manifest: the trainer measures the good parts of its training set with the
  same functions the line uses (`validation_figures`, frame_stats) and stores
  `good_<metric>_mean` / `good_<metric>_std` in the manifest's `validation` figures, next to
  `good_score_mean` / `good_score_std`. Those are means and deviations of the raw values; a
  log metric takes them through the log-normal moments (σ² = ln(1 + s²/m²),
  μ = ln m − σ²/2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edge.monitor.frame_stats import frame_stats
from edge.monitor.streaming import RunningMoments

Source = Literal["warmup", "manifest"]
_MIN_STD = 1e-9  # a metric that never moved during the warm-up: any change is a change
_TINY = 1e-12  # log of a non-positive value (a black frame) is taken at this floor


@dataclass(frozen=True)
class Baseline:
    source: Source
    parts: int  # how many observations it was learnt from
    mean: float  # chart scale; the rate p0 for a rate
    std: float = 0.0  # chart scale; 0 for a rate

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "parts": self.parts, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        source = data["source"]
        if source not in ("warmup", "manifest"):
            raise ValueError(f"unknown baseline source {source!r}")
        mean, std = float(data["mean"]), float(data["std"])
        if not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
            raise ValueError(f"bad baseline {data}")
        return cls(source, int(data["parts"]), mean, std)


def wrap_degrees(angle: float) -> float:
    """Fold into [−180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def chart_value(value: float, log: bool) -> float:
    """The value on the chart's scale: ln(value) for a log metric (floored at 1e-12)."""
    return math.log(value if value > _TINY else _TINY) if log else value


class MeanWarmup:
    """Learns a mean metric's baseline over its first observations (chart scale)."""

    def __init__(self, angle: bool = False) -> None:
        self.angle = angle
        self.moments = RunningMoments()
        self.reference: float | None = None  # angles: deviations are taken from the first

    @property
    def count(self) -> int:
        return self.moments.count

    def add(self, value: float) -> None:
        if self.angle:
            if self.reference is None:
                self.reference = value
            value = wrap_degrees(value - self.reference)
        self.moments.add(value)

    def baseline(self) -> Baseline:
        mean = self.moments.mean
        if self.angle and self.reference is not None:
            mean = wrap_degrees(self.reference + mean)
        std = max(self.moments.std, _MIN_STD * max(1.0, abs(mean)))
        return Baseline("warmup", self.count, mean, std)

    def state(self) -> dict[str, Any]:
        return {"moments": self.moments.state(), "reference": self.reference}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.moments.restore(state["moments"])
        reference = state.get("reference")
        self.reference = None if reference is None else float(reference)


def rate_baseline(events: int, parts: int, floor: float) -> Baseline:
    """p0 for a rate chart: the upper end of the one-sigma Wilson score interval of
    events/parts (Wilson 1927; Agresti & Coull 1998), kept within [floor, 0.5].

    Why the upper end: a chart designed for a p0 below the true rate false-alarms very often
    (a 2 % rate taken for 1.2 %, as one warm-up of 500 parts in twenty does, gives an ARL₀ of
    about 5,000 instead of 500,000), while one designed a little above it only detects a little
    later. A warm-up without a single reject gives about 1/parts. A chart for a rate above one
    half would watch a broken line."""
    if parts <= 0:
        raise ValueError("a rate baseline needs at least one part")
    p, z2 = events / parts, 1.0  # z = 1
    centre = p + z2 / (2 * parts)
    spread = math.sqrt(p * (1 - p) / parts + z2 / (4 * parts * parts))
    upper = (centre + spread) / (1 + z2 / parts)
    return Baseline("warmup", parts, min(0.5, max(floor, upper)))


def manifest_baseline(
    figures: Mapping[str, Any], figure: str, log: bool, angle: bool
) -> Baseline | None:
    """The baseline the engine's validation figures give for `figure`, or None without them."""
    count = figures.get("good_images")
    mean, std = figures.get(f"good_{figure}_mean"), figures.get(f"good_{figure}_std")
    if not isinstance(mean, (int, float)) or not isinstance(std, (int, float)):
        return None
    mean, std = float(mean), float(std)
    if not (math.isfinite(mean) and math.isfinite(std)) or std <= 0:
        return None
    parts = int(count) if isinstance(count, int) else 0
    if log:
        if mean <= 0:
            return None
        variance = math.log1p((std / mean) ** 2)
        return Baseline("manifest", parts, math.log(mean) - variance / 2, math.sqrt(variance))
    return Baseline("manifest", parts, wrap_degrees(mean) if angle else mean, std)


def validation_figures(
    frames: Iterable[np.ndarray],
    poses: Sequence[tuple[float, float, float]] = (),
    confidences: Sequence[float] = (),
) -> dict[str, float]:
    """The monitor's baseline figures of a set of good parts, for the manifest's `validation`.

    frames: the camera frames as the line will see them (uint8/uint16, mono or BGR), measured
    with edge.monitor.frame_stats. poses: (x px, y px, angle °) of the registered parts;
    confidences: their registration confidences. Returns good_<metric>_mean / _std for each
    metric with at least two values (angles: circular about the first one)."""
    values: dict[str, list[float]] = {"brightness": [], "contrast": [], "focus": []}
    for frame in frames:
        stats = frame_stats(frame)
        values["brightness"].append(stats.brightness)
        values["contrast"].append(stats.contrast)
        values["focus"].append(stats.focus)
    if poses:
        values["pose_x"] = [p[0] for p in poses]
        values["pose_y"] = [p[1] for p in poses]
        reference = poses[0][2]
        values["pose_angle"] = [reference + wrap_degrees(p[2] - reference) for p in poses]
    values["confidence"] = list(confidences)
    figures: dict[str, float] = {}
    for name, series in values.items():
        if len(series) < 2:
            continue
        data = np.asarray(series, dtype=np.float64)
        mean = float(data.mean())
        figures[f"good_{name}_mean"] = wrap_degrees(mean) if name == "pose_angle" else mean
        figures[f"good_{name}_std"] = float(data.std(ddof=1))
    return figures
