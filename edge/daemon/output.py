"""The output stage: every verdict ends here, exactly once per part.

For each verdict, in this order: the reject output (at once; it drives its device on its own
thread, so a device that hangs never holds up this stage), the counters, the watchdog's progress
mark; then, in part-id order, the result is handed to the metrics monitor (a queue put that never
waits) and published durably (the outbox is on disk before `publish` returns) at QoS 1 on
`result`.

The stage also enforces the deadline: a part with no verdict by its deadline is rejected here
(NOK "timeout"), even when the inspection stage is stuck; a verdict that comes after that is
late, counted and dropped. A result that cannot be stored (OutboxError: the disk) is counted
and logged; the reject path does not depend on it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from edge.daemon.counters import PipelineCounters
from edge.daemon.decide import rejection
from edge.daemon.messages import Heartbeat, Outcome
from edge.daemon.payload import result_payload
from edge.daemon.queues import StageQueue
from edge.daemon.reject import RejectOutput
from edge.daemon.sequencer import Sequencer
from edge.daemon.throttle import LogThrottle
from edge.daemon.tracker import InFlight, Ticket
from edge.daemon.verdict import ANOMALY, NOK, OK, OOD, REGISTRATION, TIMEOUT, Verdict
from edge.daemon.worker import FatalHandler, Worker
from edge.errors import PartSightError
from hw.camera.clock import Clock

log = logging.getLogger(__name__)

# The longest the stage sleeps with nothing to do: also how late a deadline can be noticed.
_TICK_S = 0.02
_ORDINARY = frozenset({"", ANOMALY, OOD, REGISTRATION})  # reasons not worth a log line each


class OutputWorker(Worker):
    def __init__(
        self,
        *,
        outputs: StageQueue[Outcome | Heartbeat],
        in_flight: InFlight,
        reject: RejectOutput,
        publish: Callable[[dict[str, object]], object] | None,
        station: str,
        counters: PipelineCounters,
        progress: Callable[[], None],
        clock: Clock,
        stop: threading.Event,
        acquisition_done: Callable[[], bool],
        on_fatal: FatalHandler,
        observe: Callable[[dict[str, object]], object] | None = None,
    ) -> None:
        super().__init__("output", stop, on_fatal)
        # Told every result payload, in part-id order (the metrics monitor; never blocks).
        self._observe = observe
        self.outputs = outputs
        self.in_flight = in_flight
        self.reject = reject
        self.station = station
        self.counters = counters
        self.clock = clock
        self._publish = publish
        self._progress = progress
        self._acquisition_done = acquisition_done
        self._sequencer = Sequencer()
        self._throttle = LogThrottle()
        self.published = 0

    def loop(self) -> None:
        while True:
            self._take(self._wait_s())
            self._drain()  # verdicts already queued settle before any deadline is enforced
            for ticket in self.in_flight.expire(self.clock.monotonic_ns()):
                self._decided(self._timed_out(ticket), progressed=False)
            self._release(self.in_flight.oldest())
            if self._finished():
                self._release(None)
                return

    def _finished(self) -> bool:
        # Once nothing can produce another part, every part in flight has settled (by its
        # verdict or its deadline) and every verdict has been taken, the stage is done.
        return (
            self.stop_event.is_set()
            and self._acquisition_done()
            and len(self.in_flight) == 0
            and self.outputs.empty()
        )

    def _wait_s(self) -> float:
        deadline = self.in_flight.next_deadline_ns()
        if deadline is None:
            return _TICK_S
        return min(_TICK_S, max(0.0, (deadline - self.clock.monotonic_ns()) / 1e9))

    def _take(self, timeout_s: float) -> None:
        try:
            if timeout_s > 0:
                item = self.outputs.get(timeout=timeout_s)
            else:
                item = self.outputs.get_nowait()
        except queue.Empty:
            return
        self._handle(item)

    def _drain(self) -> None:
        while True:
            try:
                item = self.outputs.get_nowait()
            except queue.Empty:
                return
            self._handle(item)

    def _handle(self, item: Outcome | Heartbeat) -> None:
        if isinstance(item, Heartbeat):
            self.counters.heartbeat()
            self._progress()
            return
        self._settle(item.verdict, item.progressed)

    def _settle(self, verdict: Verdict, progressed: bool) -> None:
        """A verdict from upstream: taken if its part is still waiting for one."""
        if not self.in_flight.settle(verdict.part_id):
            self.counters.late_verdict()
            if (held := self._throttle.allow("late")) is not None:
                log.warning(
                    "part %d: verdict %s came after its deadline verdict; dropped "
                    "(%d more not logged)",
                    verdict.part_id,
                    verdict.verdict,
                    held,
                )
            return
        self._decided(verdict, progressed)

    def _decided(self, verdict: Verdict, progressed: bool) -> None:
        """The part's one verdict: hand it to the reject output (which never waits on its
        device), count it, queue its result."""
        self.reject.handle(verdict)
        self.counters.record(verdict)
        if progressed:
            self._progress()
        self._log(verdict)
        self._sequencer.add(verdict)

    def _release(self, oldest_pending: int | None) -> None:
        for verdict in self._sequencer.release(oldest_pending):
            payload = result_payload(verdict, self.station)
            if self._observe is not None:
                self._observe(payload)
            if self._publish is None:
                continue
            try:
                self._publish(payload)
            except PartSightError as exc:  # OutboxError: the result could not be stored
                self.counters.publish_failed()
                log.error("part %d: result not published: %s", verdict.part_id, exc)
                continue
            self.published += 1

    def _timed_out(self, ticket: Ticket) -> Verdict:
        return rejection(
            part_id=ticket.part_id,
            trigger_ns=ticket.trigger_ns,
            trigger_wall=ticket.trigger_wall,
            verdict=NOK,
            reason=TIMEOUT,
            detail="no verdict by the deadline",
            now_ns=self.clock.monotonic_ns(),
            now_wall=self.clock.time(),
            camera=ticket.camera,
        )

    def _log(self, verdict: Verdict) -> None:
        if verdict.verdict == OK or verdict.reason in _ORDINARY:
            log.debug("part %d: %s %s", verdict.part_id, verdict.verdict, verdict.reason)
            return
        held = self._throttle.allow(verdict.reason)
        if held is not None:
            log.warning(
                "part %d: %s %s%s%s",
                verdict.part_id,
                verdict.verdict,
                verdict.reason,
                f": {verdict.detail}" if verdict.detail else "",
                f" ({held} more {verdict.reason} not logged)" if held else "",
            )
