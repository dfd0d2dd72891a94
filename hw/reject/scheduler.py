"""RejectScheduler: fires each part's reject pulse at its trigger time + delay, fail-safe, and
never lets a slow or dead output hold up the pipeline.

Parts are keyed by id, so verdicts that settle out of order still eject the right part: the
pulse for part N starts at trigger_ns(N) + delay and lasts pulse_s. Fail-safe rules:

- a part announced with `expect` that has no verdict by its deadline (trigger + delay - margin)
  is rejected with reason "timeout"; a verdict that comes after that is late and never passes
  the part;
- every rejected verdict (NOK and ERROR) fires the reject pulse;
- positive mode inverts the output: a PASS pulse fires only for OK parts, so a dead system (no
  pulses at all) rejects everything.

Output faults (a PLC that accepts the connection and never answers, one that closed an idle
connection or restarted, a camera line whose camera is gone):

- Every output change runs on the scheduler's own thread, outside its lock. `expect` and
  `verdict` (the pipeline's calls) only book the part under the lock, so a write that hangs until
  its timeout costs the output, never the pipeline.
- A change that fails is tried once more at once on a reopened output (a fresh connection), if
  the pulse's time budget allows: it must start by fire time + `max_late_s`.
- If that fails as well, the output is *down*: one ERROR line, then it is reopened with back-off
  (`reconnect_min_s` doubling up to `reconnect_max_s`) and one line says when it is back. While
  it is down nothing is written and every pulse that falls due is lost.
- A pulse that cannot start within its budget (the output down, or still busy with a write that
  hangs, or the part decided after its fire time) is *lost*: counted, its part id logged (one
  line a second at most, naming every part) and kept in `health().recent`.
- close() lets the pulses already scheduled fire (it waits at most until the last one ends, or
  timeout_s) and names in the log each part left without its pulse.

One thread runs every output change off a monotonic clock (injectable). With `threaded=False`
nothing runs by itself: a test calls `poll()` after moving its fake clock. Overlapping pulses
keep the output on until the last one ends. An optional heartbeat callable is called every
heartbeat period while verdicts keep coming (progress), and not otherwise.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hw.camera.clock import Clock, SystemClock
from hw.errors import OutputError
from hw.health import RECENT, Health, HealthState
from hw.reject.actuator import RejectActuator

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
_DEADLINE, _ON, _OFF, _FORGET, _BEAT, _REOPEN = range(6)
_PULSE_EVENTS = frozenset({_DEADLINE, _ON, _OFF})  # what close() waits for
_FORGET_AFTER_NS = 10_000_000_000  # how long a decided part id is remembered (late verdicts)
_IDLE_WAIT_S = 0.5
_LOST_LOG_INTERVAL_NS = 1_000_000_000  # lost pulses are logged at most once a second
_CLOSE_SLACK_S = 2.0  # close(): room for one output change that hangs until its timeout

_Action = tuple[int, int, int]  # (kind, part_id, due_ns)


@dataclass
class RejectCounters:
    """What the scheduler did. `rejected` counts every rejected part by reason."""

    rejected: Counter[str] = field(default_factory=Counter)
    passed: int = 0
    pulses: int = 0  # output pulses started (reject pulses, or PASS pulses in positive mode)
    late: int = 0  # verdicts for parts already decided (by their deadline)
    lost: int = 0  # parts whose pulse could not be placed (output down or busy, decided late)
    missed: int = 0  # of `lost`: parts decided after their fire time
    failed: int = 0  # output changes that failed, also on a reopened output
    retried: int = 0  # output changes that worked on a reopened output after failing once
    outages: int = 0  # times the output went down
    reopen_attempts: int = 0
    heartbeats: int = 0


class RejectScheduler:
    def __init__(
        self,
        actuator: RejectActuator,
        *,
        delay_s: float,
        pulse_s: float,
        margin_s: float,
        max_late_s: float | None = None,
        positive: bool = False,
        latency_s: float | None = None,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_period_s: float = 1.0,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 10.0,
        clock: Clock | None = None,
        threaded: bool = True,
    ) -> None:
        """`max_late_s`: how late a pulse may still start (default: pulse_s); a pulse that
        cannot start by then is lost. ValueError for timings that cannot work."""
        max_late_s = pulse_s if max_late_s is None else max_late_s
        if pulse_s <= 0 or margin_s < 0 or margin_s >= delay_s or max_late_s < 0:
            raise ValueError(
                f"reject timing: need pulse > 0, 0 <= margin < delay and max_late >= 0 "
                f"(delay {delay_s:g} s, pulse {pulse_s:g} s, margin {margin_s:g} s, "
                f"max_late {max_late_s:g} s)"
            )
        if not 0 < reconnect_min_s <= reconnect_max_s:
            raise ValueError(
                f"reject reconnect: need 0 < min <= max, got {reconnect_min_s}, {reconnect_max_s}"
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
        self.max_late_ns = round(max_late_s * 1e9)
        self.positive = positive
        self.counters = RejectCounters()
        self._heartbeat = heartbeat
        self._beat_ns = round(heartbeat_period_s * 1e9)
        self._reopen_min_s, self._reopen_max_s = reconnect_min_s, reconnect_max_s
        self._clock: Clock = clock or SystemClock()
        self._threaded = threaded
        self._cond = threading.Condition()
        self._events: list[tuple[int, int, int, int]] = []  # (due_ns, seq, kind, part_id)
        self._seq = 0
        self._pending: dict[int, int] = {}  # part_id -> trigger_ns, announced, no verdict yet
        self._decided: set[int] = set()
        self._driven: set[int] = set()  # parts whose pulse holds the output on now
        self._progressed = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._drain_until_ns = 0
        self._open = False
        # The output's state (health()).
        self._state: HealthState = "up"
        self._since = self._clock.time()
        self._detail = ""
        self._reopen_delay_s = reconnect_min_s
        self._reopen_at_ns: int | None = None
        self._lost_at_outage = 0
        self._recent: deque[int] = deque(maxlen=RECENT)
        self._unlogged: list[tuple[int, str]] = []  # lost pulses not yet in a log line
        self._logged_at_ns: int | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the actuator (OutputError if it cannot be: a start-up error) and start."""
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

    def close(self, timeout_s: float = 5.0) -> None:
        """Fire the pulses already scheduled (waiting until the last one has ended, at most
        `timeout_s`), name each part left without its pulse, drive the output off and release
        it. Idempotent; never raises."""
        if not self._open:
            return
        with self._cond:
            self._stopping = True
            self._drain_until_ns = self._clock.monotonic_ns() + round(max(timeout_s, 0.0) * 1e9)
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(max(timeout_s, 0.0) + _CLOSE_SLACK_S)
            if self._thread.is_alive():
                log.error("reject %s: an output change still hangs; giving up on it", self.name)
            self._thread = None
        self._open = False
        with self._cond:
            self._abandon()
            line = self._lost_line(self._clock.monotonic_ns(), force=True)
        _log_lines(line)
        self.actuator.close()
        c = self.counters
        log.info(
            "reject %s closed: %d pulse(s), %d lost, %d retried on a reopened output, %d outage(s)",
            self.name,
            c.pulses,
            c.lost,
            c.retried,
            c.outages,
        )

    # -- parts ----------------------------------------------------------------------------

    def expect(self, part_id: int, trigger_ns: int) -> None:
        """Announce a triggered part: without a verdict by its deadline it is rejected."""
        with self._cond:
            if part_id in self._decided or part_id in self._pending:
                return
            self._pending[part_id] = trigger_ns
            self._push(trigger_ns + self.delay_ns - self.margin_ns, _DEADLINE, part_id)

    def verdict(self, part_id: int, trigger_ns: int, rejected: bool, reason: str) -> None:
        """A part's verdict. Never waits on the output and never raises for it: output faults
        show in health() and the counters."""
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

    def progress(self) -> None:
        """Mark pipeline progress without a verdict (keeps the heartbeat going)."""
        with self._cond:
            self._progressed = True

    def poll(self) -> int | None:
        """Run every event due by now; the next due time (ns), None when nothing is queued."""
        with self._cond:
            actions = self._take_due(self._clock.monotonic_ns())
        self._perform(actions)
        with self._cond:
            line = self._lost_line(self._clock.monotonic_ns(), force=False)
            nxt = self._events[0][0] if self._events else None
        _log_lines(line)
        return nxt

    def health(self) -> Health:
        """The output's state: up, or down (reopening with back-off), with the lost pulses."""
        with self._cond:
            retry = None
            if self._state == "down" and self._reopen_at_ns is not None:
                retry = max(0.0, (self._reopen_at_ns - self._clock.monotonic_ns()) / 1e9)
            return Health(
                state=self._state,
                since=self._since,
                detail=self._detail,
                retry_in_s=retry,
                lost=self.counters.lost,
                recent=tuple(self._recent),
            )

    # -- bookkeeping (under the lock) -----------------------------------------------------

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
        late_ns = self._clock.monotonic_ns() - fire_ns
        if late_ns > self.max_late_ns:
            self.counters.missed += 1
            self._lose(part_id, f"decided {late_ns / 1e6:.0f} ms after its pulse time")
            return
        self._push(fire_ns, _ON, part_id)
        self._push(fire_ns + self.pulse_ns, _OFF, part_id)

    def _lose(self, part_id: int, why: str) -> None:
        self.counters.lost += 1
        self._recent.append(part_id)
        self._unlogged.append((part_id, why))

    def _take_due(self, now_ns: int) -> list[_Action]:
        """Settle the due events that need no output (deadlines, forgetting, heartbeat timing)
        and return the output changes to make, in due order."""
        actions: list[_Action] = []
        while self._events and self._events[0][0] <= now_ns:
            due_ns, _seq, kind, part_id = heapq.heappop(self._events)
            if kind == _DEADLINE:
                trigger_ns = self._pending.pop(part_id, None)
                if trigger_ns is not None:
                    log.warning("part %d: no verdict by its deadline; rejected (timeout)", part_id)
                    self._decide(part_id, trigger_ns, True, TIMEOUT)
            elif kind == _FORGET:
                self._decided.discard(part_id)
            elif kind == _BEAT:
                self._push(due_ns + self._beat_ns, _BEAT, 0)
                if self._progressed and self._state == "up":
                    self._progressed = False
                    actions.append((kind, part_id, due_ns))
            else:
                actions.append((kind, part_id, due_ns))
        return actions

    def _drained(self) -> bool:
        """No pulse left to fire or end, and no part waiting for its deadline."""
        return not self._driven and not any(e[2] in _PULSE_EVENTS for e in self._events)

    def _abandon(self) -> None:
        """At close: every pulse that did not fire is lost, and so is every part still waiting
        for a verdict that would have needed one (a reject, in reject mode)."""
        for _due, _seq, kind, part_id in self._events:
            if kind == _ON:
                self._lose(part_id, "the daemon stopped before its pulse")
        if not self.positive:
            for part_id in self._pending:
                self._lose(part_id, "the daemon stopped before its deadline")
        self._events.clear()
        self._pending.clear()

    def _lost_line(self, now_ns: int, *, force: bool) -> list[tuple[int, str]]:
        """The log lines naming the lost pulses not logged yet, at most one batch a second."""
        if not self._unlogged:
            return []
        if (
            not force
            and self._logged_at_ns is not None
            and now_ns - self._logged_at_ns < _LOST_LOG_INTERVAL_NS
        ):
            return []
        self._logged_at_ns = now_ns
        batch, self._unlogged = self._unlogged, []
        by_why: dict[str, list[int]] = {}
        for part_id, why in batch:
            by_why.setdefault(why, []).append(part_id)
        what = "PASS pulse (the part is rejected)" if self.positive else "reject pulse"
        level = logging.WARNING if self.positive else logging.ERROR
        return [
            (
                level,
                f"reject {self.name}: no {what} for part(s) {', '.join(map(str, ids))}: {why}; "
                f"{self.counters.lost} lost in all",
            )
            for why, ids in by_why.items()
        ]

    # -- the output thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                now = self._clock.monotonic_ns()
                if self._stopping and (self._drained() or now >= self._drain_until_ns):
                    break
                actions = self._take_due(now)
                lines = self._lost_line(now, force=False)
                if not actions and not lines:
                    nxt = self._events[0][0] if self._events else None
                    wait_s = _IDLE_WAIT_S if nxt is None else max(0.0, (nxt - now) / 1e9)
                    if self._stopping:
                        wait_s = min(wait_s, max(0.0, (self._drain_until_ns - now) / 1e9))
                    if wait_s > 0:
                        self._cond.wait(min(wait_s, _IDLE_WAIT_S))
                    continue
            _log_lines(lines)
            self._perform(actions)
        with self._cond:
            driven, self._driven = bool(self._driven), set()
        if driven:
            self._change(False, None, None)

    def _perform(self, actions: list[_Action]) -> None:
        for kind, part_id, due_ns in actions:
            if kind == _ON:
                self._pulse_on(part_id, due_ns)
            elif kind == _OFF:
                self._pulse_off(part_id)
            elif kind == _BEAT:
                self._beat()
            elif kind == _REOPEN:
                self._reopen()

    def _pulse_on(self, part_id: int, due_ns: int) -> None:
        with self._cond:
            if self._state == "down":
                self._lose(part_id, "the output is down")
                return
        late_ns = self._clock.monotonic_ns() - due_ns
        if late_ns > self.max_late_ns:
            with self._cond:
                self._lose(
                    part_id, f"the output was still busy {late_ns / 1e6:.0f} ms after its time"
                )
            return
        done = self._change(True, part_id, due_ns + self.max_late_ns)
        with self._cond:
            if done:
                self.counters.pulses += 1
                self._driven.add(part_id)
            else:
                self._lose(part_id, "the output failed")

    def _pulse_off(self, part_id: int) -> None:
        with self._cond:
            if part_id not in self._driven:
                return  # its pulse never started
            self._driven.discard(part_id)
            if self._driven:
                return  # another part's pulse holds the output on
        self._change(False, part_id, None)

    def _beat(self) -> None:
        if self._heartbeat is None:
            return
        try:
            self._heartbeat()
        except OutputError as exc:
            self._down(exc)
            return
        with self._cond:
            self.counters.heartbeats += 1

    def _change(self, on: bool, part_id: int | None, budget_end_ns: int | None) -> bool:
        """Drive the output; on a failure, once more on a reopened output if the budget allows.
        False when it could not be driven (the output is then down)."""
        try:
            self.actuator.set(on, part_id)
            return True
        except OutputError as exc:
            first = exc
        if budget_end_ns is not None and self._clock.monotonic_ns() > budget_end_ns:
            self._down(first)
            return False
        try:
            self.actuator.close()
            self.actuator.open()
            self.actuator.set(on, part_id)
        except OutputError as exc:
            self._down(exc)
            return False
        with self._cond:
            self.counters.retried += 1
        log.info(
            "reject %s: %s for part %s done on a reopened output (the first try failed: %s)",
            self.name,
            "pulse" if on else "end of pulse",
            part_id,
            first,
        )
        return True

    def _down(self, exc: OutputError) -> None:
        with self._cond:
            self.counters.failed += 1
            if self._state == "down":
                return
            self._state, self._since = "down", self._clock.time()
            consequence = (
                "no PASS pulses: every part is rejected"
                if self.positive
                else "rejected parts are not thrown out"
            )
            self._detail = f"{exc}; {consequence}"
            self.counters.outages += 1
            self._lost_at_outage = self.counters.lost
            self._driven.clear()  # what the output does now is unknown; reopening turns it off
            self._reopen_delay_s = self._reopen_min_s
            self._reopen_at_ns = self._clock.monotonic_ns() + round(self._reopen_delay_s * 1e9)
            self._push(self._reopen_at_ns, _REOPEN, 0)
        log.error(
            "reject %s: output down: %s; %s until it is back (reopening in %.1f s)",
            self.name,
            exc,
            consequence,
            self._reopen_min_s,
        )

    def _reopen(self) -> None:
        with self._cond:
            if self._state != "down":
                return
            self.counters.reopen_attempts += 1
        try:
            self.actuator.close()
            self.actuator.open()
        except OutputError as exc:
            with self._cond:
                self._reopen_delay_s = delay = min(self._reopen_delay_s * 2, self._reopen_max_s)
                self._reopen_at_ns = self._clock.monotonic_ns() + round(delay * 1e9)
                self._push(self._reopen_at_ns, _REOPEN, 0)
            log.debug("reject %s: reopening failed (%s); next try in %.1f s", self.name, exc, delay)
            return
        with self._cond:
            down_s = self._clock.time() - self._since
            lost = self.counters.lost - self._lost_at_outage
            self._state, self._since, self._detail = "up", self._clock.time(), ""
            self._reopen_at_ns = None
        log.info(
            "reject %s: output back after %.1f s down; %d pulse(s) lost meanwhile",
            self.name,
            down_s,
            lost,
        )


def _log_lines(lines: list[tuple[int, str]]) -> None:
    for level, text in lines:
        log.log(level, "%s", text)
