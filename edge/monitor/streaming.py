"""Streaming statistics in fixed memory and O(1) time per value: nothing grows with the parts.

- RunningMoments: count, mean and standard deviation by Welford's update (Welford 1962;
  Knuth, TAOCP vol. 2, §4.2.2), for learning a baseline over a warm-up window.
- WindowedHistogram: a fixed set of bins counting the last N values (a ring buffer of their
  bins), for recent quantiles (latency p99, the OK parts' score p99).
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


class WindowedHistogram:
    """Quantiles of the last `window` values, over fixed bins.

    A ring buffer keeps the bin of each of the last `window` values, so a value is counted in
    exactly `window` updates and then leaves: an excursion of the line is forgotten a known
    number of parts after it ends (an exponentially fading histogram keeps a long excursion in
    its upper tail for several half-lives, so a p99 alert would stay up thousands of parts
    after the cause was removed). Memory is fixed by `window`; an update is O(1).

    Bins are linear over [low, high] or logarithmic (`log=True`, low > 0); values outside fall
    into the end bins; non-finite values (and non-positive ones on a log scale) are ignored.
    Quantiles are exact to within one bin width (the bin's upper edge is returned, so a p99
    errs on the high side).

    Raises ValueError for an empty range, fewer than two bins or a window under one value."""

    def __init__(
        self, low: float, high: float, bins: int = 256, window: int = 500, log: bool = False
    ) -> None:
        if not high > low or bins < 2 or window < 1 or (log and low <= 0):
            raise ValueError(
                f"bad histogram: [{low}, {high}], {bins} bins, window {window}, log={log}"
            )
        self._log = log
        self._low = math.log(low) if log else low
        self._scale = bins / ((math.log(high) if log else high) - self._low)
        self.edges = np.geomspace(low, high, bins + 1) if log else np.linspace(low, high, bins + 1)
        self._bins = bins
        self._counts = np.zeros(bins, dtype=np.int64)
        self._ring = np.full(window, -1, dtype=np.int64)  # bin of each recent value, -1: empty
        self._next = 0
        self.seen = 0

    def add(self, value: float) -> None:
        if not math.isfinite(value) or (self._log and value <= 0):
            return
        position = ((math.log(value) if self._log else value) - self._low) * self._scale
        index = min(self._bins - 1, max(0, int(position)))
        leaving = int(self._ring[self._next])
        if leaving >= 0:
            self._counts[leaving] -= 1
        self._ring[self._next] = index
        self._counts[index] += 1
        self._next = (self._next + 1) % len(self._ring)
        self.seen += 1

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q < 1) of the values in the window, or None before any value."""
        total = int(self._counts.sum())
        if total <= 0:
            return None
        index = int(np.searchsorted(np.cumsum(self._counts), q * total))
        return float(self.edges[min(index, self._bins - 1) + 1])
