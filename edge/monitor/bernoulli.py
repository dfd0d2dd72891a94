"""The Bernoulli CUSUM for a rate that should not rise (Reynolds & Stoumbos, "A CUSUM chart for
monitoring a proportion when inspecting continuously", Journal of Quality Technology 31(1),
1999).

Each part is one Bernoulli observation Xᵢ ∈ {0, 1} (rejected for this reason or not). To detect
a rise of the rate from p0 to p1 = ratio·p0, the log-likelihood-ratio CUSUM reduces to

    Bᵢ = max(0, Bᵢ₋₁ + Xᵢ − γ),   γ = ln((1 − p0)/(1 − p1)) / ln(p1 (1 − p0) / (p0 (1 − p1)))

signalling when Bᵢ ≥ h. As Reynolds & Stoumbos do, γ is rounded to 1/m for an integer m, so
that Sᵢ = m·Bᵢ moves on the integers (up m − 1 on a reject, down 1 on a good part) and its run
length is an exact Markov chain (edge.monitor.arl.bernoulli_arl). That makes h a derived
quantity: the monitor is configured with the in-control ARL₀ it should have, and the smallest
integer limit H = m·h that reaches it is found from the chain for the p0 the baseline measured.

A one-sided chart: a reject rate that falls is good news (and a score or camera problem that
makes it fall shows up in the mean metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from edge.monitor.arl import bernoulli_arl
from edge.monitor.detector import ABOVE, IN_CONTROL

_MAX_P1 = 0.99  # ratio·p0 beyond this is clamped: a rate cannot exceed 1
_MAX_LIMIT = 200_000  # H beyond this means an absurd ARL₀ for the rate; refused


@dataclass(frozen=True)
class BernoulliDesign:
    """A Bernoulli CUSUM tuned to one baseline rate (see the module docstring)."""

    p0: float  # in-control rate
    p1: float  # the rate the chart is tuned to detect (ratio·p0, at most 0.99)
    m: int  # 1/γ rounded: the integer statistic goes up m − 1 on a reject, down 1 otherwise
    limit: int  # H: signal when the integer statistic reaches it (h = H/m)
    arl0: float  # exact in-control ARL of this design, in parts
    arl1: float  # exact ARL when the rate is p1, in parts

    @property
    def h(self) -> float:
        return self.limit / self.m


def gamma(p0: float, p1: float) -> float:
    """Reynolds & Stoumbos' reference value γ for p0 → p1 (0 < p0 < p1 < 1)."""
    if not 0 < p0 < p1 < 1:
        raise ValueError(f"need 0 < p0 < p1 < 1, got p0={p0}, p1={p1}")
    return math.log((1 - p0) / (1 - p1)) / math.log(p1 * (1 - p0) / (p0 * (1 - p1)))


@lru_cache(maxsize=256)
def design(p0: float, ratio: float, arl0: float) -> BernoulliDesign:
    """The chart for baseline rate `p0` detecting `ratio`·p0 with in-control ARL ≥ `arl0`.

    Raises ValueError for p0 outside (0, 1), ratio ≤ 1, arl0 < 2, or a design whose limit
    would exceed 200,000 (an ARL₀ no line needs)."""
    if not 0 < p0 < 1:
        raise ValueError(f"baseline rate must be in (0, 1), got {p0}")
    if not ratio > 1:
        raise ValueError(f"the rate ratio to detect must be > 1, got {ratio}")
    if not arl0 >= 2:
        raise ValueError(f"ARL0 must be >= 2 parts, got {arl0}")
    p1 = min(ratio * p0, _MAX_P1)
    if p1 <= p0:
        raise ValueError(f"baseline rate {p0} leaves no room to detect a rise")
    m = max(2, round(1.0 / gamma(p0, p1)))
    lo, hi = 1, m
    while bernoulli_arl(p0, m, hi) < arl0:  # ARL grows with the limit: bracket, then bisect
        lo, hi = hi, hi * 2
        if hi > _MAX_LIMIT:
            raise ValueError(f"ARL0 {arl0:g} needs a Bernoulli CUSUM limit above {_MAX_LIMIT}")
    while lo < hi:
        mid = (lo + hi) // 2
        if bernoulli_arl(p0, m, mid) >= arl0:
            hi = mid
        else:
            lo = mid + 1
    return BernoulliDesign(
        p0=p0,
        p1=p1,
        m=m,
        limit=hi,
        arl0=bernoulli_arl(p0, m, hi),
        arl1=bernoulli_arl(p1, m, hi),
    )


class BernoulliCusum:
    """The integer-valued Bernoulli CUSUM of a design. Observations are 0/1 (or bool arrays).

    The statistic is held at `cap`·limit (default: at the limit) once there: a rare event's
    limit is large (hundreds of good parts in units of the statistic's fall per part), and
    whatever it piled up above it would have to be worked off before the rate could be called
    back in control. It never changes when the first signal comes."""

    kind = "bernoulli"

    def __init__(self, chart: BernoulliDesign, cap: float = 1.0) -> None:
        if not cap >= 1:
            raise ValueError(f"cap must be >= 1 (in units of the limit), got {cap}")
        self.design = chart
        self._m = chart.m
        self._limit = chart.limit
        self._cap = int(cap * chart.limit)
        self.reset()

    def reset(self, shape: tuple[int, ...] = ()) -> None:
        self.value: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)
        self.steps: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)
        self.events: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)

    def update(self, x: Any) -> None:
        """One part: 1 (or True) if it counts towards the rate, else 0."""
        value = self.value + self._m * x - 1
        if isinstance(value, int):  # one chart: plain Python, the line's per-part cost
            value = 0 if value < 0 else (self._cap if value > self._cap else value)
            if value:
                self.steps += 1
                self.events += x
            else:
                self.steps = self.events = 0
            self.value = value
            return
        # arrays: max(0, ·) and min(·, cap) in integer arithmetic
        value = (value + abs(value)) // 2
        over = value - self._cap
        self.value = value - (over + abs(over)) // 2
        active = self.value > 0
        self.steps = (self.steps + 1) * active
        self.events = (self.events + x) * active

    def alarm(self) -> Any:
        return self.value >= self._limit

    # -- one chart (scalar state) ------------------------------------------------------------

    def direction(self) -> int:
        return ABOVE if self.value >= self._limit else IN_CONTROL

    def settled(self, fraction: float) -> bool:
        return bool(self.value <= fraction * self._limit)

    def excursion(self, direction: int) -> int:
        return int(self.steps) if direction == ABOVE else 0

    def excursion_rate(self) -> float | None:
        """The rate since the statistic last left zero (events / parts), None outside one."""
        return float(self.events) / float(self.steps) if self.steps else None

    def statistic(self) -> float:
        """B = S/m, in the units of h."""
        return float(self.value) / self._m

    @property
    def limit(self) -> float:
        return self._limit / self._m

    def state(self) -> dict[str, float]:
        return {"value": int(self.value), "steps": int(self.steps), "events": int(self.events)}

    def restore(self, state: dict[str, Any]) -> None:
        self.value = min(max(0, int(state["value"])), self._cap)
        self.steps = max(0, int(state["steps"]))
        self.events = max(0, min(int(state["events"]), self.steps))
