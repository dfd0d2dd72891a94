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

    def open(self) -> None:
        if self.fail:
            raise OutputError("still broken")
        super().open()

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


def test_a_failed_output_goes_down_loses_pulses_by_part_and_comes_back() -> None:
    clock = ManualClock()
    sched, act = make(clock, reconnect_min_s=0.5, reconnect_max_s=2.0)
    act.fail = True
    sched.verdict(1, ns(0.0), True, "anomaly")
    run_until(clock, sched, 0.3)  # the pulse failed, also on the reopened output: down
    health = sched.health()
    assert (health.state, health.lost, health.recent) == ("down", 1, (1,))
    assert health.detail == "still broken; rejected parts are not thrown out"
    assert health.retry_in_s == pytest.approx(0.4, abs=1e-6)  # 0.5 s after the fault at 0.2
    sched.verdict(2, ns(0.3), True, "anomaly")
    run_until(clock, sched, 0.6)  # part 2's pulse (0.5) while down: lost without a write
    assert sched.counters.failed == 1 and sched.health().recent == (1, 2)
    run_until(clock, sched, 0.7)  # the reopen at 0.7 fails: next in 1.0 s (doubled)
    assert sched.health().retry_in_s == pytest.approx(1.0, abs=1e-6)
    act.fail = False
    run_until(clock, sched, 1.75)
    assert sched.health().state == "up" and sched.health().lost == 2
    sched.verdict(3, ns(1.8), True, "anomaly")
    run_until(clock, sched, 2.1)
    assert act.edges == [(2.0, True, 3), (2.02, False, 3)]
    c = sched.counters
    assert (c.outages, c.lost, c.reopen_attempts, c.pulses) == (1, 2, 2, 1)


def test_a_pulse_that_cannot_start_within_its_budget_is_lost_not_late() -> None:
    clock = ManualClock()
    sched, act = make(clock, max_late_s=0.005)
    sched.verdict(1, ns(0.0), True, "anomaly")
    sched.verdict(2, ns(0.05), True, "anomaly")
    clock.now = 1000.0 + 0.21  # the thread was held up 10 ms past part 1's pulse time
    sched.poll()
    run_until(clock, sched, 1.0)
    assert act.edges == [(0.25, True, 2), (0.27, False, 2)]
    assert sched.health().recent == (1,) and sched.counters.lost == 1


def test_a_part_decided_after_its_pulse_time_is_lost_by_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    sched, act = make(clock, delay_s=0.2, margin_s=0.0)
    sched.verdict(4, ns(0.0), True, "anomaly")
    run_until(clock, sched, 0.25)
    sched.verdict(5, ns(0.0), False, "")  # never announced: rejected (timeout), too late
    run_until(clock, sched, 1.0)
    assert [e[2] for e in act.edges] == [4, 4]
    assert sched.counters.missed == 1 and sched.health().recent == (5,)
    assert "no reject pulse for part(s) 5: decided 50 ms after its pulse time" in caplog.text


def test_positive_mode_a_lost_pass_pulse_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    sched, act = make(clock, positive=True)
    act.fail = True
    sched.verdict(1, ns(0.0), False, "")
    run_until(clock, sched, 0.3)
    assert "no PASS pulses: every part is rejected" in sched.health().detail
    lost = [r for r in caplog.records if "no PASS pulse (the part is rejected)" in r.message]
    assert [r.levelname for r in lost] == ["WARNING"]


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
