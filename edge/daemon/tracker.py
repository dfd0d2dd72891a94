"""The parts in flight: every part id handed out and not yet settled, with its deadline.

The acquisition registers a part before it goes anywhere; the output stage settles it when its
verdict arrives, and expires it (a NOK "timeout", fail-safe) when its deadline passes first,
even if the inspection stage is stuck. A verdict arriving for a part already settled is late
and dropped: each part id gets exactly one verdict.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from edge.daemon.verdict import CameraInfo


@dataclass(frozen=True)
class Ticket:
    """What a timeout verdict needs to know about a part that never got one."""

    part_id: int
    trigger_ns: int
    trigger_wall: float
    deadline_ns: int
    camera: CameraInfo | None


class InFlight:
    """Thread-safe: registered by the acquisition, settled and expired by the output stage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Part ids are handed out in increasing order, so insertion order is id order and
        # (with one deadline for all parts) deadline order too.
        self._parts: OrderedDict[int, Ticket] = OrderedDict()

    def register(self, ticket: Ticket) -> None:
        with self._lock:
            self._parts[ticket.part_id] = ticket

    def settle(self, part_id: int) -> bool:
        """Mark a part as having its verdict; False if it had one already (or never existed)."""
        with self._lock:
            return self._parts.pop(part_id, None) is not None

    def expire(self, now_ns: int) -> list[Ticket]:
        """Remove and return the parts whose deadline has passed."""
        expired: list[Ticket] = []
        with self._lock:
            for part_id, ticket in list(self._parts.items()):
                if ticket.deadline_ns > now_ns:
                    break
                del self._parts[part_id]
                expired.append(ticket)
        return expired

    def oldest(self) -> int | None:
        """The lowest part id still waiting for its verdict."""
        with self._lock:
            return next(iter(self._parts), None)

    def next_deadline_ns(self) -> int | None:
        with self._lock:
            first = next(iter(self._parts.values()), None)
            return None if first is None else first.deadline_ns

    def __len__(self) -> int:
        with self._lock:
            return len(self._parts)
