"""Software-trigger pacing: a fixed rate on the monotonic clock."""

from __future__ import annotations

import threading
from collections.abc import Callable

from hw.camera.clock import Clock

# The longest single sleep, so the idle callback (heartbeats) still runs while waiting.
_MAX_NAP_S = 0.25


class Pacer:
    """Triggers at `rate_hz` on a fixed schedule (no drift). A trigger more than one period
    late restarts the schedule instead of firing a burst to catch up: parts come when they
    come, and a burst would only overload the pipeline."""

    def __init__(self, rate_hz: float, clock: Clock) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.period_ns = round(1e9 / rate_hz)
        self._clock = clock
        self._due_ns: int | None = None
        self.restarts = 0  # times the schedule fell more than a period behind

    def wait(self, stop: threading.Event, on_idle: Callable[[], None]) -> bool:
        """Wait until the next trigger is due; False if `stop` was set meanwhile."""
        now = self._clock.monotonic_ns()
        if self._due_ns is None or now - self._due_ns > self.period_ns:
            if self._due_ns is not None:
                self.restarts += 1
            self._due_ns = now
        while True:
            left_ns = self._due_ns - self._clock.monotonic_ns()
            if left_ns <= 0:
                break
            if stop.wait(min(left_ns / 1e9, _MAX_NAP_S)):
                return False
            on_idle()
        self._due_ns += self.period_ns
        return True
