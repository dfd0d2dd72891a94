"""The bounded queues between the workers."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How often a blocked put looks up to see whether its consumer is still there.
_PUT_POLL_S = 0.1


class StageQueue(queue.Queue[T]):
    """A bounded queue.Queue that can also wait for room without putting anything, so a
    free-running trigger fires only when the part it triggers has a place to go."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"a stage queue must be bounded, got maxsize={maxsize}")
        super().__init__(maxsize)

    def wait_for_room(self, timeout_s: float, below: int | None = None) -> bool:
        """Wait until fewer than `below` items (default: maxsize) are queued; False on
        timeout."""
        limit = self.maxsize if below is None else min(below, self.maxsize)
        with self.not_full:
            return self.not_full.wait_for(lambda: self._qsize() < limit, timeout_s)

    def put_while(self, item: T, alive: Callable[[], bool]) -> bool:
        """Put, waiting for room as long as the consumer is `alive()`; False if it went away
        (the item was not put). For verdicts, which are never dropped while anyone can take
        them."""
        while True:
            try:
                self.put(item, timeout=_PUT_POLL_S)
                return True
            except queue.Full:
                if not alive():
                    return False
