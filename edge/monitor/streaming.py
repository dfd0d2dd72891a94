"""Streaming statistics in O(1) memory and O(1) time per value: nothing grows with the parts.

- RunningMoments: count, mean and standard deviation by Welford's update (Welford 1962;
  Knuth, TAOCP vol. 2, §4.2.2), for learning a baseline over a warm-up window.
- DecayingHistogram: a fixed set of bins whose old counts fade with a half-life in parts, for
  recent quantiles (latency p99, the OK parts' score p99). An update adds a weight that grows
  by 1/decay each part instead of multiplying every bin by the decay, so it stays O(1); the
  bins are rescaled once the weight gets large.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class RunningMoments:
    """Count, mean and sample standard deviation of the values seen so far."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self._m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        """Sample standard deviation (n − 1); 0 with fewer than two values."""
        return math.sqrt(self._m2 / (self.count - 1)) if self.count > 1 else 0.0

    def state(self) -> dict[str, float]:
        return {"count": self.count, "mean": self.mean, "m2": self._m2}

    def restore(self, state: dict[str, Any]) -> None:
        count, mean, m2 = int(state["count"]), float(state["mean"]), float(state["m2"])
        if count < 0 or m2 < 0 or not (math.isfinite(mean) and math.isfinite(m2)):
            raise ValueError(f"bad running moments {state}")
        self.count, self.mean, self._m2 = count, mean, m2


class DecayingHistogram:
    """Recent quantiles over fixed bins; counts fade with a half-life of `half_life` values.

    Bins are linear over [low, high] or logarithmic (`log=True`, low > 0); values outside fall
    into the end bins. Quantiles are exact to within one bin width (the bin's upper edge is
    returned, so a p99 errs on the high side)."""

    def __init__(
        self, low: float, high: float, bins: int = 256, half_life: float = 500.0, log: bool = False
    ) -> None:
        if not high > low or bins < 2 or not half_life > 0 or (log and low <= 0):
            raise ValueError(f"bad histogram: [{low}, {high}], {bins} bins, log={log}")
        self._log = log
        self._low = math.log(low) if log else low
        self._scale = bins / ((math.log(high) if log else high) - self._low)
        self.edges = np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)
        self._bins = bins
        self._counts = np.zeros(bins)
        self._growth = 2.0 ** (1.0 / half_life)  # 1/decay per value
        self._weight = 1.0
        self.seen = 0

    def add(self, value: float) -> None:
        if not math.isfinite(value) or (self._log and value <= 0):
            return
        position = ((math.log(value) if self._log else value) - self._low) * self._scale
        index = min(self._bins - 1, max(0, int(position)))
        self._counts[index] += self._weight
        self._weight *= self._growth
        self.seen += 1
        if self._weight > 1e100:  # rescale now and then; the ratios are all that matter
            self._counts /= self._weight
            self._weight = 1.0

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q < 1) of the recent values, or None before any value."""
        total = float(self._counts.sum())
        if total <= 0:
            return None
        index = int(np.searchsorted(np.cumsum(self._counts), q * total))
        return float(self.edges[min(index, self._bins - 1) + 1])
