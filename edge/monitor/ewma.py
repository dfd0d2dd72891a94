"""The EWMA chart for a process mean (Roberts 1959; Lucas & Saccucci, "Exponentially weighted
moving average control schemes: properties and enhancements", Technometrics 32(1), 1990;
Montgomery, *Introduction to Statistical Quality Control*, 7th ed., §9.2).

On standardised observations z = (x − μ0) / σ0:

    wᵢ = λ zᵢ + (1 − λ) wᵢ₋₁,   w₀ = 0,   signal when |wᵢ| > L · σ_w(i)

with the exact, time-varying width σ_w(i) = sqrt(λ / (2 − λ) · (1 − (1 − λ)^{2i})) or its
asymptote sqrt(λ / (2 − λ)).

Which limits: both are offered (`limits = "exact" | "asymptotic"`). Lucas & Saccucci's ARL
tables, which the tests reproduce (λ = 0.1, L = 2.814: ARL₀ ≈ 500, a 1σ shift found in ≈ 10.3
parts), are computed with the asymptotic limits. The exact limits are the monitor's default:
a chart starts afresh whenever its baseline is set (end of the warm-up, a new engine), and a
process that is already off then is seen within the first few parts, where the asymptotic
limits are too wide by up to 1/sqrt(λ(2 − λ))·… (Montgomery §9.2.1 recommends them for exactly
this reason). The price is a slightly shorter ARL₀, stated with the defaults.

The state may be Python floats or numpy arrays of independent charts (see detector.py).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from edge.monitor.detector import ABOVE, BELOW, IN_CONTROL

Limits = Literal["exact", "asymptotic"]
_SETTLED = 1e-12  # (1 − λ)^{2i} below this: the exact limit equals the asymptote


class Ewma:
    """EWMA on standardised values, with exact (time-varying) or asymptotic limits."""

    kind = "ewma"

    def __init__(self, lam: float, L: float, limits: Limits = "exact") -> None:
        if not 0 < lam <= 1:
            raise ValueError(f"EWMA lambda must be in (0, 1], got {lam}")
        if not L > 0:
            raise ValueError(f"EWMA L must be > 0, got {L}")
        if limits not in ("exact", "asymptotic"):
            raise ValueError(f"EWMA limits must be 'exact' or 'asymptotic', got {limits!r}")
        self.lam = float(lam)
        self.L = float(L)
        self.limits = limits
        self._asymptote = self.L * math.sqrt(self.lam / (2.0 - self.lam))
        self.reset()

    def reset(self, shape: tuple[int, ...] = ()) -> None:
        """Start afresh: one chart (shape ()) or an array of independent ones."""
        self.value: Any = 0.0 if shape == () else np.zeros(shape)
        self.n_upper: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)
        self.n_lower: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)
        self.steps = 0  # shared by every chart in an array: they start together
        self._decay = 1.0  # (1 − λ)^{2·steps}
        self._limit = 0.0 if self.limits == "exact" else self._asymptote

    def update(self, z: Any) -> None:
        """One standardised observation (a float, or an array shaped like the state)."""
        value = self.value = self.lam * z + (1.0 - self.lam) * self.value
        if isinstance(value, float):  # one chart: plain Python, the line's per-part cost
            self.n_upper = self.n_upper + 1 if value > 0.0 else 0
            self.n_lower = self.n_lower + 1 if value < 0.0 else 0
        else:
            self.n_upper = (self.n_upper + 1) * (value > 0)
            self.n_lower = (self.n_lower + 1) * (value < 0)
        if self._decay > _SETTLED:
            self.steps += 1
            self._decay *= (1.0 - self.lam) ** 2
            if self.limits == "exact":
                self._limit = self._asymptote * math.sqrt(1.0 - self._decay)

    @property
    def limit(self) -> float:
        """The current control limit, in σ of the observations (the chart is symmetric)."""
        return self._limit

    def alarm(self) -> Any:
        return abs(self.value) > self._limit

    # -- one chart (scalar state) ------------------------------------------------------------

    def direction(self) -> int:
        if self.value > self._limit:
            return ABOVE
        if self.value < -self._limit:
            return BELOW
        return IN_CONTROL

    def settled(self, fraction: float) -> bool:
        return bool(abs(self.value) <= fraction * self._asymptote)

    def excursion(self, direction: int) -> int:
        """Parts since the EWMA last crossed the centre line to that side."""
        return int(self.n_upper if direction == ABOVE else self.n_lower)

    def shift(self, direction: int) -> float:
        """The EWMA itself: the current mean's estimate, in σ from the baseline."""
        return float(self.value)

    def statistic(self) -> float:
        return float(self.value)

    def state(self) -> dict[str, float]:
        return {
            "value": float(self.value),
            "n_upper": int(self.n_upper),
            "n_lower": int(self.n_lower),
            "steps": self.steps,
        }

    def restore(self, state: dict[str, Any]) -> None:
        value = float(state["value"])
        if not math.isfinite(value):
            raise ValueError(f"EWMA value {value} is not finite")
        self.reset()
        self.steps = max(0, int(state["steps"]))
        self._decay = (1.0 - self.lam) ** (2 * self.steps)
        if self.limits == "exact":
            self._limit = self._asymptote * math.sqrt(1.0 - self._decay)
        self.value = value
        self.n_upper = max(0, int(state["n_upper"]))
        self.n_lower = max(0, int(state["n_lower"]))
