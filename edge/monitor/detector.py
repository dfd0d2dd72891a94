"""What every change detector offers the monitor, and the arithmetic they share.

A detector watches one standardised stream (means: z = (x − μ0)/σ0; rates: 0/1 per part) and
says, after each update, whether the process is out of control and on which side. The
detectors (TabularCusum, Ewma, BernoulliCusum) keep their state in Python numbers for one chart
on the line, or in numpy arrays for many independent charts at once (the Monte-Carlo ARL
tests): `positive` and `at_most` work on both without branching.
"""

from __future__ import annotations

from typing import Any, Protocol

ABOVE, BELOW, IN_CONTROL = 1, -1, 0


def positive(x: Any) -> Any:
    """max(0, x), elementwise for arrays: (x + |x|) / 2 is exact in floating point."""
    return (x + abs(x)) * 0.5


def at_most(x: Any, cap: float) -> Any:
    """min(x, cap), elementwise for arrays."""
    return x - positive(x - cap)


class Detector(Protocol):
    """One chart on one standardised stream (the scalar use on the line)."""

    kind: str

    def update(self, z: Any) -> None:
        """Take one observation: z in σ units (means) or 0/1 (rates)."""

    def direction(self) -> int:
        """ABOVE or BELOW while out of control, else IN_CONTROL."""

    def settled(self, fraction: float) -> bool:
        """The statistic is within `fraction` of its limit: back in control."""

    def excursion(self, direction: int) -> int:
        """Parts since the statistic last left its resting value on that side."""

    def statistic(self) -> float:
        """The plotted statistic (signed by side where the chart has two)."""

    @property
    def limit(self) -> float:
        """The decision limit the statistic is compared with (same units)."""

    def state(self) -> dict[str, float]:
        """JSON-ready state, for persistence across restarts."""

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what `state` returned (KeyError/ValueError/TypeError if malformed)."""
