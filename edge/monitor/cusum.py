"""The two-sided tabular CUSUM for a process mean (Page 1954; Montgomery, *Introduction to
Statistical Quality Control*, 7th ed., §9.1.2).

On standardised observations z = (x − μ0) / σ0:

    C⁺ᵢ = max(0, C⁺ᵢ₋₁ + zᵢ − k)        C⁻ᵢ = max(0, C⁻ᵢ₋₁ − zᵢ − k)        C⁺₀ = C⁻₀ = 0

and the chart signals when C⁺ᵢ > h (the mean went up) or C⁻ᵢ > h (down). k (the reference
value) is usually half the shift to detect, in σ; h the decision interval, in σ. With k = 0.5,
h = 5 the in-control average run length is ARL₀ ≈ 465 and a 1σ shift is found in ≈ 10.4 parts
(Montgomery Table 9.3); `edge.monitor.arl` computes ARLs for other (k, h).

Besides the sums, the chart counts N⁺, N⁻: how many parts since the sum last left zero. At a
signal that is the estimated change point (the shift began N parts ago) and the new mean is
μ0 + σ0 (k + C⁺/N⁺) (Montgomery eq. 9.5). Those are what the alert says.

The state may be Python floats (one chart, as on the line) or numpy arrays of any shape (many
independent charts stepped together, as the Monte-Carlo ARL tests do); every operation below
works on both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.monitor.detector import ABOVE, BELOW, IN_CONTROL, at_most, positive


class TabularCusum:
    """Two-sided tabular CUSUM on standardised values (z in σ units).

    `cap` (in units of h) bounds the sums once past the limit, so that after the cause is
    removed the chart comes back within about cap·h/k parts instead of having to unwind
    everything a long shift piled up. It never changes when the first signal comes
    (cap > 1), so the published ARLs hold.
    """

    kind = "cusum"

    def __init__(self, k: float, h: float, cap: float = 2.0) -> None:
        if not k >= 0:
            raise ValueError(f"CUSUM k must be >= 0, got {k}")
        if not h > 0:
            raise ValueError(f"CUSUM h must be > 0, got {h}")
        if not cap > 1:
            raise ValueError(f"CUSUM cap must be > 1 (in units of h), got {cap}")
        self.k = float(k)
        self.h = float(h)
        self._cap = float(cap) * self.h
        self.reset()

    def reset(self, shape: tuple[int, ...] = ()) -> None:
        """Start afresh: one chart (shape ()) or an array of independent ones."""
        zero: Any = 0.0 if shape == () else np.zeros(shape)
        self.upper: Any = zero
        self.lower: Any = zero if shape == () else np.zeros(shape)
        self.n_upper: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)
        self.n_lower: Any = 0 if shape == () else np.zeros(shape, dtype=np.int64)

    def update(self, z: Any) -> None:
        """One standardised observation (a float, or an array shaped like the state)."""
        upper = self.upper + z - self.k
        lower = self.lower - z - self.k
        if isinstance(upper, float):  # one chart: plain Python, the line's per-part cost
            cap = self._cap
            upper = 0.0 if upper < 0.0 else (cap if upper > cap else upper)
            lower = 0.0 if lower < 0.0 else (cap if lower > cap else lower)
            self.n_upper = self.n_upper + 1 if upper > 0.0 else 0
            self.n_lower = self.n_lower + 1 if lower > 0.0 else 0
        else:
            upper = at_most(positive(upper), self._cap)
            lower = at_most(positive(lower), self._cap)
            self.n_upper = (self.n_upper + 1) * (upper > 0)
            self.n_lower = (self.n_lower + 1) * (lower > 0)
        self.upper, self.lower = upper, lower

    def alarm(self) -> Any:
        """True where either sum is past h (bool, or a bool array)."""
        return (self.upper > self.h) | (self.lower > self.h)

    # -- one chart (scalar state) ------------------------------------------------------------

    def direction(self) -> int:
        """ABOVE, BELOW or IN_CONTROL (the side further past h wins if both are)."""
        if self.upper > self.h and self.upper >= self.lower:
            return ABOVE
        if self.lower > self.h:
            return BELOW
        return IN_CONTROL

    def settled(self, fraction: float) -> bool:
        """Both sums at or below fraction·h: back in control, for clearing an alert."""
        limit = fraction * self.h
        return bool(self.upper <= limit and self.lower <= limit)

    def excursion(self, direction: int) -> int:
        """Parts since the sum on that side last left zero: the estimated change point."""
        return int(self.n_upper if direction == ABOVE else self.n_lower)

    def shift(self, direction: int) -> float:
        """Estimated size of the shift, in σ, signed (Montgomery eq. 9.5); 0 with no excursion."""
        if direction == ABOVE:
            return self.k + self.upper / self.n_upper if self.n_upper else 0.0
        return -(self.k + self.lower / self.n_lower) if self.n_lower else 0.0

    def statistic(self) -> float:
        """The larger sum, signed by its side (for plots and snapshots), in σ."""
        return float(self.upper) if self.upper >= self.lower else -float(self.lower)

    @property
    def limit(self) -> float:
        return self.h

    def state(self) -> dict[str, float]:
        return {
            "upper": float(self.upper),
            "lower": float(self.lower),
            "n_upper": int(self.n_upper),
            "n_lower": int(self.n_lower),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.upper = min(max(0.0, float(state["upper"])), self._cap)
        self.lower = min(max(0.0, float(state["lower"])), self._cap)
        self.n_upper = max(0, int(state["n_upper"]))
        self.n_lower = max(0, int(state["n_lower"]))
