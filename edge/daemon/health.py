"""The station's health: the states of the camera, the reject output and the MQTT link
(hw.health.Health), watched by the daemon's main loop.

Every tick, `poll()` reads each component and returns what changed: a new state (or a new detail
while not up), or new losses (lost pulses, messages set aside; at most one report a second per
component). The daemon then sends systemd a new STATUS line at once, hands the states to the
publisher for the retained `status`, and publishes each change on `alert` (see `worth_an_alert`).

Whoever else wants to hear of the same changes (the metrics monitor, say) subscribes a callback:
it is called from the main loop with each Change, after the daemon has reported it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hw.health import Health

log = logging.getLogger(__name__)

_LOSS_REPORT_S = 1.0  # new losses are reported at most this often per component


@dataclass(frozen=True)
class Change:
    component: str  # "camera", "reject", "mqtt"
    before: Health | None  # None: the first reading
    after: Health

    @property
    def worth_an_alert(self) -> bool:
        """Every change but the first reading of a component that is up, and but the MQTT link
        going down and up (the alert would travel over that very link; the broker's own
        monitoring sees it): a take-over, a twin station and messages set aside are alerts."""
        if self.component == "mqtt":
            if self.before is None:
                return self.after.state == "error"
            return "error" in (self.before.state, self.after.state) or (
                self.after.lost > self.before.lost
            )
        return self.before is not None or not self.after.ok


class StationHealth:
    def __init__(
        self,
        components: Mapping[str, Callable[[], Health]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`components`: name -> the component's health() method."""
        self._components = dict(components)
        self._clock = clock
        self._last: dict[str, Health] = {}
        self._loss_reported: dict[str, float] = {}
        self._listeners: list[Callable[[Change], None]] = []

    def watch(self, name: str, read: Callable[[], Health]) -> None:
        """Watch one more component (the MQTT link, once the publisher exists)."""
        self._components[name] = read

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def current(self) -> dict[str, Health]:
        """Every component's health as of now (for STATUS and metrics; no change tracking)."""
        return {name: read() for name, read in self._components.items()}

    def poll(self) -> list[Change]:
        """Read every component; the changes since the last poll."""
        now = self._clock()
        changes: list[Change] = []
        for name, read in self._components.items():
            after = read()
            before = self._last.get(name)
            if not self._changed(name, before, after, now):
                continue
            self._last[name] = after
            changes.append(Change(name, before, after))
        return changes

    def tell(self, changes: list[Change]) -> None:
        """Pass the changes on to the subscribers; one that fails is logged and kept."""
        for change in changes:
            for listener in self._listeners:
                try:
                    listener(change)
                except Exception:  # a subscriber's bug must not stop the daemon's main loop
                    log.exception("a health subscriber failed on %s", change.component)

    def _changed(self, name: str, before: Health | None, after: Health, now: float) -> bool:
        if before is None or before.state != after.state:
            self._loss_reported[name] = now
            return True
        if not after.ok and after.detail != before.detail:
            return True
        if after.lost > before.lost and now - self._loss_reported.get(name, 0.0) >= _LOSS_REPORT_S:
            self._loss_reported[name] = now
            return True
        return False
