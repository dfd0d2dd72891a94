"""Exponential back-off with jitter for reconnecting to the broker.

Jitter spreads the reconnects of a whole line of stations after a broker restart, so they do
not all hit it in the same instant; the floor of half the delay keeps a retry from coming
almost immediately after a failure.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays of min_s, 2·min_s, 4·min_s … capped at max_s, each scaled by a factor in [0.5, 1]."""

    def __init__(self, min_s: float, max_s: float, rng: random.Random | None = None) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"back-off needs 0 < min_s <= max_s, got {min_s} and {max_s}")
        self.min_s = min_s
        self.max_s = max_s
        self._rng = rng if rng is not None else random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles the base until it reaches max_s."""
        base = min(self.max_s, self.min_s * 2.0 ** min(self._attempt, 62))
        self._attempt += 1
        return base * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        """Start again from min_s (after a connection that stayed up)."""
        self._attempt = 0
