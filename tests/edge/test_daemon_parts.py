"""The daemon's small pieces: parts in flight and their deadlines, results in part order,
trigger pacing, the bounded queues, counters and the reject output interface."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from edge.config import NoneRejectConfig
from edge.daemon.counters import PipelineCounters, percentile
from edge.daemon.pacing import Pacer
from edge.daemon.queues import StageQueue
from edge.daemon.reject import NoneRejectOutput, RejectOutput, create_reject_output
from edge.daemon.sequencer import Sequencer
from edge.daemon.tracker import InFlight, Ticket
from edge.daemon.verdict import Verdict
from tests.hw.clocks import ManualClock


def ticket(part_id: int, deadline_ns: int) -> Ticket:
    return Ticket(part_id, deadline_ns - 500, 1.7e9, deadline_ns, None)


def verdict(part_id: int, result: str = "OK", reason: str = "", total_ms: float = 10.0) -> Verdict:
    return Verdict(
        part_id=part_id,
        verdict=result,
        reason=reason,
        trigger_ns=0,
        trigger_wall=1.7e9,
        verdict_ns=round(total_ms * 1e6),
        verdict_wall=1.7e9,
    )


def test_in_flight_settles_each_part_once_and_expires_by_deadline() -> None:
    tracker = InFlight()
    for part_id in (1, 2, 3):
        tracker.register(ticket(part_id, deadline_ns=part_id * 1000))
    assert len(tracker) == 3 and tracker.oldest() == 1 and tracker.next_deadline_ns() == 1000
    assert tracker.settle(2) and not tracker.settle(2)  # a second verdict is late
    assert [t.part_id for t in tracker.expire(now_ns=999)] == []
    assert [t.part_id for t in tracker.expire(now_ns=3000)] == [1, 3]
    assert not tracker.settle(1)  # it already got its timeout verdict
    assert len(tracker) == 0 and tracker.oldest() is None and tracker.next_deadline_ns() is None


def test_sequencer_releases_in_part_order_below_the_oldest_pending() -> None:
    seq = Sequencer()
    for part_id in (5, 3, 4):
        seq.add(verdict(part_id))
    assert [v.part_id for v in seq.release(oldest_pending=4)] == [3]
    assert [v.part_id for v in seq.release(oldest_pending=4)] == []
    assert len(seq) == 2
    assert [v.part_id for v in seq.release(oldest_pending=None)] == [4, 5]


def test_pacer_keeps_a_fixed_schedule_and_restarts_when_far_behind() -> None:
    clock = ManualClock()
    stop = threading.Event()
    pacer = Pacer(10.0, clock)
    idle: list[int] = []
    assert pacer.wait(stop, lambda: idle.append(1))  # the first trigger is due at once
    clock.advance(0.03)  # the grab took 30 ms; the next is due 70 ms later

    started = time.monotonic()
    # The pacer sleeps on the stop event (real time), so run this one against a stop that
    # fires to prove it returns False promptly rather than sleeping out the period.
    stop.set()
    assert not pacer.wait(stop, lambda: None)
    assert time.monotonic() - started < 0.5
    stop.clear()
    clock.advance(0.5)  # far behind: no burst of catch-up triggers
    assert pacer.wait(stop, lambda: None)
    assert pacer.restarts == 1
    with pytest.raises(ValueError):
        Pacer(0.0, clock)


def test_pacer_spaces_triggers_on_the_real_clock() -> None:
    from hw.camera.clock import SystemClock

    pacer, stop = Pacer(50.0, SystemClock()), threading.Event()
    started = time.monotonic()
    for _ in range(6):
        assert pacer.wait(stop, lambda: None)
    assert 0.09 <= time.monotonic() - started < 0.5  # 5 periods of 20 ms


def test_stage_queue_is_bounded_and_waits_for_room() -> None:
    q: StageQueue[int] = StageQueue(2)
    q.put_nowait(1)
    q.put_nowait(2)
    assert not q.wait_for_room(0.01)
    threading.Timer(0.05, q.get).start()
    assert q.wait_for_room(2.0)
    assert not q.wait_for_room(0.01, below=1)  # one is still waiting
    threading.Timer(0.05, q.get).start()
    assert q.wait_for_room(2.0, below=1)
    with pytest.raises(ValueError, match="bounded"):
        StageQueue(0)


def test_put_while_gives_up_when_the_consumer_is_gone() -> None:
    q: StageQueue[int] = StageQueue(1)
    q.put_nowait(0)
    assert not q.put_while(1, alive=lambda: False)
    threading.Timer(0.05, q.get).start()
    assert q.put_while(2, alive=lambda: True)
    assert q.get_nowait() == 2


def test_counters() -> None:
    counters = PipelineCounters()
    counters.record(verdict(1, total_ms=10))
    counters.record(verdict(2, "NOK", "overload", total_ms=30))
    counters.record(verdict(3, "ERROR", "camera", total_ms=20))
    counters.late_verdict()
    counters.heartbeat()
    snap = counters.snapshot()
    assert snap.parts == 3 and counters.parts == 3
    assert snap.verdicts == {"OK": 1, "NOK": 1, "ERROR": 1}
    assert snap.reasons == {"overload": 1, "camera": 1}
    assert snap.overload == 1 and snap.late_verdicts == 1 and snap.heartbeats == 1
    assert (snap.latency_ms_p50, snap.latency_ms_max) == (20.0, 30.0)
    assert snap.as_dict()["latency_ms"]["p99"] == 30.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 50, None), ([1.0], 99, 1.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([*range(100)], 99, 98)],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(sorted(values), q) == expected


def test_the_none_reject_output_honours_the_interface(caplog: Any) -> None:
    output = create_reject_output(NoneRejectConfig(kind="none"))
    assert isinstance(output, NoneRejectOutput) and isinstance(output, RejectOutput)
    output.open()
    output.handle(verdict(1))
    output.handle(verdict(2, "NOK", "anomaly"))
    output.close()
    output.close()  # idempotent
    assert output.rejected == 1
