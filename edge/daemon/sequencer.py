"""Results leave in part-id order.

Verdicts settle out of order (an overload NOK overtakes the parts still being inspected; a
timeout is decided by the output stage), but SCADA reads results in part order. A settled
verdict is held until every lower part id has settled too; since every part settles by its
deadline, nothing is held longer than that. The reject output does not wait for this.
"""

from __future__ import annotations

import heapq
import itertools

from edge.daemon.verdict import Verdict


class Sequencer:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Verdict]] = []
        self._seq = itertools.count()  # a tie-break that never compares two Verdicts

    def add(self, verdict: Verdict) -> None:
        heapq.heappush(self._heap, (verdict.part_id, next(self._seq), verdict))

    def release(self, oldest_pending: int | None) -> list[Verdict]:
        """The held verdicts below `oldest_pending` (all of them when None), lowest id first."""
        out: list[Verdict] = []
        while self._heap and (oldest_pending is None or self._heap[0][0] < oldest_pending):
            out.append(heapq.heappop(self._heap)[2])
        return out

    def __len__(self) -> int:
        return len(self._heap)
