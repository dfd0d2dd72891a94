"""RejectScheduler logic on a hand-moved clock: pulse timing by part id, fail-safe timeout,
ERROR rejects, positive mode, overlapping pulses, heartbeat, start-up checks."""

from __future__ import annotations

import pytest

from hw.errors import OutputError
from hw.reject import NoneActuator, RejectScheduler
from tests.hw.clocks import ManualClock


class Recorder(NoneActuator):
    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.edges: list[tuple[float, bool, int | None]] = []
        self.fail = False

    def set(self, on: bool, part_id: int | None = None) -> None:
        if self.fail:
            raise OutputError("broken")
        self.edges.append((round(self.clock.now - 1000.0, 6), on, part_id))
        super().set(on, part_id)


def make(clock: ManualClock, **kw: object) -> tuple[RejectScheduler, Recorder]:
    act = Recorder(clock)
    opts: dict[str, object] = {"delay_s": 0.2, "pulse_s": 0.02, "margin_s": 0.01}
    opts.update(kw)
    sched = RejectScheduler(act, clock=clock, threaded=False, **opts)  # type: ignore[arg-type]
    sched.open()
    return sched, act


def run_until(clock: ManualClock, sched: RejectScheduler, t: float) -> None:
    """Step the clock event by event up to t seconds after the start."""
    while True:
        nxt = sched.poll()
        if nxt is None or nxt / 1e9 > 1000.0 + t:
            clock.now = 1000.0 + t
            sched.poll()
            return
        clock.now = nxt / 1e9


def ns(t: float) -> int:
    return round((1000.0 + t) * 1e9)


def test_out_of_order_verdicts_fire_at_each_parts_own_time() -> None:
    clock = ManualClock()
    sched, act = make(clock)
    for pid, t in ((1, 0.0), (2, 0.05), (3, 0.1)):
        sched.expect(pid, ns(t))
    clock.advance(0.12)
    sched.verdict(3, ns(0.1), True, "anomaly")
    sched.verdict(2, ns(0.05), False, "")
    sched.verdict(1, ns(0.0), True, "camera")
    run_until(clock, sched, 1.0)
    assert act.edges == [(0.2, True, 1), (0.22, False, 1), (0.3, True, 3), (0.32, False, 3)]
    assert sched.counters.rejected == {"anomaly": 1, "camera": 1}
    assert sched.counters.passed == 1


def test_no_verdict_by_deadline_is_rejected_timeout_and_late_verdict_never_passes() -> None:
    clock = ManualClock()
    sched, act = make(clock)
    sched.expect(1, ns(0.0))
    run_until(clock, sched, 0.195)  # past delay - margin
    sched.verdict(1, ns(0.0), False, "")  # late OK: must not pass the part
    run_until(clock, sched, 1.0)
    assert act.edges == [(0.2, True, 1), (0.22, False, 1)]
    assert sched.counters.rejected == {"timeout": 1}
    assert sched.counters.passed == 0
    assert sched.counters.late == 1


def test_verdict_after_deadline_before_poll_is_timeout() -> None:
    clock = ManualClock()
    sched, act = make(clock)
    clock.advance(0.195)
    sched.verdict(7, ns(0.0), False, "")  # never expected, arrives past its deadline
    run_until(clock, sched, 1.0)
    assert [e[1] for e in act.edges] == [True, False]
    assert sched.counters.rejected == {"timeout": 1}


def test_error_verdict_is_rejected() -> None:
    clock = ManualClock()
    sched, act = make(clock)
    sched.verdict(1, ns(0.0), True, "inference")
    run_until(clock, sched, 1.0)
    assert len(act.edges) == 2
    assert sched.counters.rejected == {"inference": 1}


def test_positive_mode_pulses_ok_parts_only() -> None:
    clock = ManualClock()
    sched, act = make(clock, positive=True)
    sched.verdict(1, ns(0.0), False, "")
    sched.verdict(2, ns(0.01), True, "anomaly")
    sched.expect(3, ns(0.02))  # never judged: no PASS pulse
    run_until(clock, sched, 1.0)
    assert act.edges == [(0.2, True, 1), (0.22, False, 1)]
    assert sched.counters.rejected == {"anomaly": 1, "timeout": 1}


def test_overlapping_pulses_hold_until_last_ends() -> None:
    clock = ManualClock()
    sched, act = make(clock)
    sched.verdict(1, ns(0.0), True, "anomaly")
    sched.verdict(2, ns(0.01), True, "anomaly")
    run_until(clock, sched, 1.0)
    assert act.edges == [(0.2, True, 1), (0.21, True, 2), (0.23, False, 2)]
    assert sched.counters.pulses == 2


def test_heartbeat_only_while_progressing() -> None:
    clock = ManualClock()
    beats: list[float] = []
    sched, _ = make(clock, heartbeat=lambda: beats.append(clock.now), heartbeat_period_s=0.1)
    for i in range(5):
        sched.verdict(i, ns(i * 0.1), False, "")
        run_until(clock, sched, i * 0.1 + 0.1)
    n = len(beats)
    run_until(clock, sched, 2.0)
    assert n >= 4
    assert len(beats) == n


def test_output_failure_is_counted_and_reported() -> None:
    clock = ManualClock()
    sched, act = make(clock)
    act.fail = True
    sched.verdict(1, ns(0.0), True, "anomaly")
    run_until(clock, sched, 1.0)
    assert sched.counters.failed == 2
    with pytest.raises(OutputError):
        sched.verdict(2, ns(1.0), False, "")


def test_delay_shorter_than_latency_is_an_error() -> None:
    with pytest.raises(ValueError, match="latency"):
        RejectScheduler(NoneActuator(), delay_s=0.2, pulse_s=0.02, margin_s=0.01, latency_s=0.25)
    with pytest.raises(ValueError):
        RejectScheduler(NoneActuator(), delay_s=0.2, pulse_s=0.02, margin_s=0.2)


def test_threaded_open_close_idempotent() -> None:
    sched = RejectScheduler(NoneActuator(), delay_s=0.05, pulse_s=0.01, margin_s=0.01)
    sched.open()
    sched.open()
    sched.close()
    sched.close()
