"""What a component says about its own state: the camera, the reject output, the MQTT link.

One small typed shape for all of them, so that the daemon reports each the same way (the systemd
STATUS line, the retained `status` topic, `metrics`) without knowing what the component is:

    up     working
    down   not working; the component tries again by itself (`retry_in_s` says when) and
           `detail` says what happens to the parts meanwhile
    error  a fault that trying again does not fix: someone must change something (a client id
           used by two stations, ...); the component may still be working

`lost` counts what this component lost for good so far (reject pulses that could not be placed,
MQTT messages set aside), and `recent` names the latest of them (part ids, outbox ids).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

HealthState = Literal["up", "down", "error"]
RECENT = 20  # how many of the latest losses a Health names


@dataclass(frozen=True, kw_only=True)
class Health:
    state: HealthState
    since: float  # wall-clock seconds (time.time()) of the last change of state
    detail: str = ""  # one line: what is wrong and what it means for the parts; "" when up
    retry_in_s: float | None = None  # while down: seconds until the next attempt
    lost: int = 0  # things lost for good because of this component, so far
    recent: tuple[int, ...] = ()  # the ids of the latest of them, oldest first (<= RECENT)

    @property
    def ok(self) -> bool:
        return self.state == "up"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for `status` and `metrics`."""
        return {
            "state": self.state,
            "since": round(self.since, 3),
            "detail": self.detail,
            "retry_in_s": None if self.retry_in_s is None else round(self.retry_in_s, 1),
            "lost": self.lost,
            "recent": list(self.recent),
        }

    def summary(self) -> str:
        """A few words for a STATUS line: `up`, `DOWN (why; retry in 2.0 s; 3 lost)`."""
        if self.state == "up" and not self.lost:
            return "up"
        parts = [self.detail] if self.detail and self.state != "up" else []
        if self.retry_in_s is not None:
            parts.append(f"retry in {self.retry_in_s:.1f} s")
        if self.lost:
            parts.append(f"{self.lost} lost")
        word = self.state if self.state == "up" else self.state.upper()
        return f"{word} ({'; '.join(parts)})"


def up(since: float | None = None) -> Health:
    """A component that works and has lost nothing."""
    return Health(state="up", since=time.time() if since is None else since)
