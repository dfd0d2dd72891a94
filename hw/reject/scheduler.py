"""RejectScheduler: fires each part's reject pulse at its trigger time + delay, fail-safe.

Parts are keyed by id, so verdicts that settle out of order still eject the right part: the
pulse for part N starts at trigger_ns(N) + delay and lasts pulse_s. Fail-safe rules:

- a part announced with `expect` that has no verdict by its deadline (trigger + delay - margin)
  is rejected with reason "timeout"; a verdict that comes after that is late and never passes
  the part;
- every rejected verdict (NOK and ERROR) fires the reject pulse;
- positive mode inverts the output: a PASS pulse fires only for OK parts, so a dead system (no
  pulses at all) rejects everything.

One thread runs every output change off a monotonic clock (injectable). With `threaded=False`
nothing runs by itself: a test calls `poll()` after moving its fake clock. Overlapping pulses
keep the output on until the last one ends. An optional heartbeat callable is called every
heartbeat period while verdicts keep coming (progress), and not otherwise.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hw.camera.clock import Clock, SystemClock
from hw.errors import HardwareError, OutputError
from hw.reject.actuator import RejectActuator

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
_DEADLINE, _ON, _OFF, _FORGET, _BEAT = range(5)
_FORGET_AFTER_NS = 10_000_000_000  # how long a decided part id is remembered (late verdicts)
_IDLE_WAIT_S = 0.5


@dataclass
class RejectCounters:
    """What the scheduler did. `rejected` counts every rejected part by reason."""

    rejected: Counter[str] = field(default_factory=Counter)
    passed: int = 0
    pulses: int = 0  # output pulses started (reject pulses, or PASS pulses in positive mode)
    late: int = 0  # verdicts for parts already decided (by their deadline)
    missed: int = 0  # parts decided after their fire time: the pulse could not be placed
    failed: int = 0  # output changes that raised OutputError
    heartbeats: int = 0


class RejectScheduler:
    def __init__(
        self,
        actuator: RejectActuator,
        *,
        delay_s: float,
        pulse_s: float,
        margin_s: float,
        positive: bool = False,
        latency_s: float | None = None,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_period_s: float = 1.0,
        clock: Clock | None = None,
        threaded: bool = True,
    ) -> None:
        if pulse_s <= 0 or margin_s < 0 or margin_s >= delay_s:
            raise ValueError(
                f"reject timing: need pulse > 0 and 0 <= margin < delay "
                f"(delay {delay_s:g} s, pulse {pulse_s:g} s, margin {margin_s:g} s)"
            )
        if latency_s is not None and delay_s - margin_s < latency_s:
            raise ValueError(
                f"reject delay {delay_s * 1e3:g} ms minus margin {margin_s * 1e3:g} ms is "
                f"shorter than the pipeline latency {latency_s * 1e3:g} ms: parts would be "
                "rejected by timeout before their verdict can arrive"
            )
        self.actuator = actuator
        self.name = actuator.name
        self.delay_ns = round(delay_s * 1e9)
        self.pulse_ns = round(pulse_s * 1e9)
        self.margin_ns = round(margin_s * 1e9)
        self.positive = positive
        self.counters = RejectCounters()
        self._heartbeat = heartbeat
        self._beat_ns = round(heartbeat_period_s * 1e9)
        self._clock: Clock = clock or SystemClock()
        self._threaded = threaded
        self._cond = threading.Condition()
        self._events: list[tuple[int, int, int, int]] = []  # (due_ns, seq, kind, part_id)
        self._seq = 0
        self._pending: dict[int, int] = {}  # part id -> trigger_ns, announced, undecided
        self._decided: set[int] = set()
        self._active = 0  # pulses currently holding the output on
        self._progressed = False
        self._fault: OutputError | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._open = False

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        if self._open:
            return
        self.actuator.open()
        self._open = True
        self._stopping = False
        if self._heartbeat is not None:
            with self._cond:
                self._push(self._clock.monotonic_ns() + self._beat_ns, _BEAT, 0)
        if self._threaded:
            self._thread = threading.Thread(target=self._run, name="reject", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if not self._open:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._open = False
        self.actuator.close()

    # -- parts ----------------------------------------------------------------------------

    def expect(self, part_id: int, trigger_ns: int) -> None:
        """Announce a triggered part: without a verdict by its deadline it is rejected."""
        with self._cond:
            if part_id in self._decided or part_id in self._pending:
                return
            self._pending[part_id] = trigger_ns
            self._push(trigger_ns + self.delay_ns - self.margin_ns, _DEADLINE, part_id)

    def verdict(self, part_id: int, trigger_ns: int, rejected: bool, reason: str) -> None:
        """A part's verdict. OutputError if the output failed since the last call."""
        with self._cond:
            self._progressed = True
            if part_id in self._decided:
                self.counters.late += 1
                log.warning("part %d: verdict came after its deadline; it stays rejected", part_id)
            elif self._clock.monotonic_ns() > trigger_ns + self.delay_ns - self.margin_ns:
                self._pending.pop(part_id, None)
                self.counters.late += 1
                self._decide(part_id, trigger_ns, True, TIMEOUT)
            else:
                self._pending.pop(part_id, None)
                self._decide(part_id, trigger_ns, rejected, reason)
            fault, self._fault = self._fault, None
        if fault is not None:
            raise fault

    def progress(self) -> None:
        """Mark pipeline progress without a verdict (keeps the heartbeat going)."""
        with self._cond:
            self._progressed = True

    def poll(self) -> int | None:
        """Run every event due by now; the next due time (ns), None when nothing is queued."""
        with self._cond:
            return self._run_due(self._clock.monotonic_ns())

    # -- internals ------------------------------------------------------------------------

    def _push(self, due_ns: int, kind: int, part_id: int) -> None:
        self._seq += 1
        heapq.heappush(self._events, (due_ns, self._seq, kind, part_id))
        self._cond.notify()

    def _decide(self, part_id: int, trigger_ns: int, rejected: bool, reason: str) -> None:
        self._decided.add(part_id)
        fire_ns = trigger_ns + self.delay_ns
        self._push(fire_ns + self.pulse_ns + _FORGET_AFTER_NS, _FORGET, part_id)
        if rejected:
            self.counters.rejected[reason or "unknown"] += 1
        else:
            self.counters.passed += 1
        if rejected == self.positive:
            return  # no pulse: a passed part (reject mode) or a rejected one (positive mode)
        if self._clock.monotonic_ns() > fire_ns:
            self.counters.missed += 1
            log.error("part %d: decided after its reject time; no pulse placed", part_id)
            return
        self._push(fire_ns, _ON, part_id)
        self._push(fire_ns + self.pulse_ns, _OFF, part_id)

    def _run(self) -> None:
        with self._cond:
            while not self._stopping:
                now = self._clock.monotonic_ns()
                nxt = self._run_due(now)
                wait_s = _IDLE_WAIT_S if nxt is None else max(0.0, (nxt - now) / 1e9)
                if wait_s > 0:
                    self._cond.wait(min(wait_s, _IDLE_WAIT_S))
            if self._active:
                self._active = 0
                self._drive(False, None)

    def _run_due(self, now_ns: int) -> int | None:
        while self._events and self._events[0][0] <= now_ns:
            due_ns, _seq, kind, part_id = heapq.heappop(self._events)
            self._event(kind, part_id, due_ns)
        return self._events[0][0] if self._events else None

    def _event(self, kind: int, part_id: int, due_ns: int) -> None:
        if kind == _DEADLINE:
            trigger_ns = self._pending.pop(part_id, None)
            if trigger_ns is not None:
                log.warning("part %d: no verdict by its deadline; rejected (timeout)", part_id)
                self._decide(part_id, trigger_ns, True, TIMEOUT)
        elif kind == _ON:
            self.counters.pulses += 1
            self._active += 1
            self._drive(True, part_id)
        elif kind == _OFF:
            self._active = max(0, self._active - 1)
            if self._active == 0:
                self._drive(False, part_id)
        elif kind == _FORGET:
            self._decided.discard(part_id)
        elif kind == _BEAT:
            self._push(due_ns + self._beat_ns, _BEAT, 0)
            if self._progressed and self._heartbeat is not None:
                self._progressed = False
                try:
                    self._heartbeat()
                    self.counters.heartbeats += 1
                except HardwareError as exc:
                    log.error("reject %s: heartbeat failed: %s", self.name, exc)

    def _drive(self, on: bool, part_id: int | None) -> None:
        try:
            self.actuator.set(on, part_id)
        except OutputError as exc:
            self.counters.failed += 1
            self._fault = exc
            log.error("reject %s: could not drive the output %s: %s", self.name, on, exc)
