"""The modbus reject output against a real pymodbus TCP server on a free loopback port
(tests/integration/plc.py), healthy and in the faults PLCs show in the field.

The server records every coil and register write with the monotonic time it arrived. Runs of a
few hundred parts, with out-of-order verdicts and a known set of rejected parts, check that each
rejected part gets exactly one pulse at trigger + delay, and no other part gets one; then that a
PLC that stops answering, closes idle connections or restarts costs the output (each part
without its pulse counted and named), never the caller, and that a clean stop fires the pulses
already scheduled.
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

import pytest

pytest.importorskip("pymodbus")

from edge.config.reject import ModbusRejectConfig
from edge.daemon.reject import ScheduledRejectOutput, create_reject_output
from tests.integration.plc import Plc

TOLERANCE_MS = 8.0  # pulse timing on a loaded 2-core machine; the bench measures the spread


def output(plc: Plc, **kw: Any) -> ScheduledRejectOutput:
    fields: dict[str, Any] = {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": plc.port,
        "delay_ms": 150.0,
        "pulse_ms": 4.0,
        "margin_ms": 20.0,
        # Well above the 4 ms pulse: a loaded test machine's scheduling must not lose pulses
        # in the timing tests; the fault tests lose them to the PLC, not to the machine.
        "max_late_ms": 50.0,
    }
    fields.update(kw)
    out = create_reject_output(ModbusRejectConfig(**fields), latency_ms=100.0)
    assert isinstance(out, ScheduledRejectOutput)
    return out


def run_parts(
    out: ScheduledRejectOutput,
    n: int,
    bad: set[int],
    period_s: float,
    slow: frozenset[int] = frozenset(),
    at: tuple[tuple[float, Any], ...] = (),
    settle_s: float = 0.3,
) -> dict[int, int]:
    """Trigger n parts every period_s; verdicts come 5-80 ms later, out of order (slow parts:
    after the deadline). `at`: (seconds after the first trigger, callable) to run on the way.
    Returns each part's trigger_ns."""
    rng = random.Random(5)
    start = time.monotonic_ns() + 20_000_000
    triggers = {i: start + round(i * period_s * 1e9) for i in range(n)}
    events: list[tuple[int, int, int]] = []  # (due_ns, kind 0=expect 1=verdict 2=call, index)
    for i, t in triggers.items():
        events.append((t, 0, i))
        lag = 0.2 if i in slow else rng.uniform(0.005, 0.08)
        events.append((t + round(lag * 1e9), 1, i))
    for k, (when_s, _call) in enumerate(at):
        events.append((start + round(when_s * 1e9), 2, k))
    events.sort()
    for due, kind, i in events:
        while (wait := due - time.monotonic_ns()) > 0:
            time.sleep(min(wait / 1e9, 0.002))
        if kind == 0:
            out.expect(i, triggers[i])
        elif kind == 1:
            out.scheduler.verdict(i, triggers[i], i in bad, "anomaly" if i in bad else "")
        else:
            at[i][1]()
    time.sleep(settle_s)  # let the last pulses go out
    return triggers


def errors_ms(
    writes: list[tuple[int, int]], triggers: dict[int, int], delay_ms: float
) -> list[float]:
    return [(t - triggers[p]) / 1e6 - delay_ms for t, p in writes]


def test_registers_each_rejected_part_exactly_once_on_time(plc: Plc) -> None:
    n = 300
    bad = {i for i in range(n) if i % 7 == 3} | {11, 12, 13}
    out = output(plc, target="registers", registers=10)
    out.open()
    try:
        triggers = run_parts(out, n, bad, period_s=0.01)
    finally:
        out.close()
    pulses = [(w.t_ns, w.part_id) for w in plc.register_writes(10)]
    assert sorted(p for _, p in pulses) == sorted(bad)  # exactly one each, no OK part
    assert all(w.values[2] == 1 for w in plc.writes if w.address == 10)
    err = errors_ms(pulses, triggers, 150.0)
    print(f"registers: timing error ms min {min(err):.3f} max {max(err):.3f}")
    assert max(abs(e) for e in err) <= TOLERANCE_MS
    assert out.scheduler.counters.rejected == {"anomaly": len(bad)}
    assert out.scheduler.counters.passed == n - len(bad)


def test_coil_pulses_on_time_with_width(plc: Plc) -> None:
    n = 200
    bad = {i for i in range(n) if i % 5 == 1}
    out = output(plc, target="coil", coil=4, pulse_ms=4.0)
    out.open()
    try:
        triggers = run_parts(out, n, bad, period_s=0.01)
    finally:
        out.close()
    coil = [w for w in plc.writes if w.kind == "coil" and w.address == 4]
    ons = [w.t_ns for w in coil if w.values == (1,)]
    offs = [w.t_ns for w in coil if w.values == (0,)]
    assert len(ons) == len(bad)
    fire = sorted(triggers[i] + 150_000_000 for i in bad)
    err = [(t - f) / 1e6 for t, f in zip(sorted(ons), fire, strict=True)]
    print(f"coil: timing error ms min {min(err):.3f} max {max(err):.3f}")
    assert max(abs(e) for e in err) <= TOLERANCE_MS
    widths = [(off - on) / 1e6 for on in ons for off in offs if 0 < off - on < 9_000_000][:]
    assert len(widths) == len(bad)
    assert all(abs(w - 4.0) <= TOLERANCE_MS for w in widths)


def test_slow_verdict_is_rejected_timeout_never_passed(plc: Plc) -> None:
    n = 40
    slow = {5, 17}
    bad = {9}
    out = output(plc, target="registers", registers=10)
    out.open()
    try:
        run_parts(out, n, bad, period_s=0.01, slow=frozenset(slow))
    finally:
        out.close()
    rejected = sorted(w.values[0] for w in plc.writes if w.address == 10)
    assert rejected == sorted(bad | slow)
    c = out.scheduler.counters
    assert c.rejected == {"anomaly": 1, "timeout": 2}
    assert c.passed == n - 3
    assert c.late == 2
    assert c.missed == 0


def test_heartbeat_stops_within_two_periods(plc: Plc) -> None:
    period = 0.05
    out = output(plc, heartbeat_register=100, heartbeat_period_ms=period * 1e3)
    out.open()
    try:
        end = time.monotonic() + 0.6
        i = 0
        while time.monotonic() < end:
            out.scheduler.verdict(i, time.monotonic_ns(), False, "")
            i += 1
            time.sleep(0.01)
        stopped = time.monotonic_ns()
        time.sleep(0.5)
    finally:
        out.close()
    beats = [w for w in plc.writes if w.address == 100]
    values = [w.values[0] for w in beats]
    assert len(values) >= 8 and values == sorted(set(values))  # counting up while progressing
    assert beats[-1].t_ns - stopped <= 2 * period * 1e9


# -- a PLC in trouble ------------------------------------------------------------------------------

SCHEDULER_LOG = "hw.reject.scheduler"
FIRE_S = 0.15  # delay_ms of output()


def named_lost(caplog: pytest.LogCaptureFixture) -> list[int]:
    """Every part id named in the scheduler's "no reject pulse for part(s) ..." lines."""
    ids: list[int] = []
    for r in caplog.records:
        found = re.match(r"reject modbus: no reject pulse for part\(s\) ([\d, ]+):", r.message)
        if r.name == SCHEDULER_LOG and found:
            ids += [int(x) for x in found.group(1).split(", ")]
    return ids


def lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_a_plc_that_never_answers_costs_the_output_never_the_caller(
    plc: Plc, caplog: pytest.LogCaptureFixture
) -> None:
    """The PLC accepts and reads every request but stops answering for 1.5 s. Verdicts keep
    coming on time (not one is late: the caller never waited on the PLC); every rejected part
    whose pulse fell in the hang is lost, counted and named; the others get exactly one pulse;
    the output goes down once and comes back once."""
    caplog.set_level(logging.INFO)
    n, period = 400, 0.01  # 4 s of parts at 100 parts/s
    bad = {i for i in range(n) if i % 4 == 1}
    out = output(
        plc,
        target="registers",
        registers=10,
        timeout_ms=300.0,
        reconnect_min_s=0.2,
        reconnect_max_s=0.4,
    )
    out.open()
    states: list[str] = []
    try:
        triggers = run_parts(
            out,
            n,
            bad,
            period,
            at=(
                (1.0, plc.hang.set),
                (1.7, lambda: states.append(out.health().state)),
                (2.5, plc.hang.clear),
            ),
        )
    finally:
        out.close()
    c = out.scheduler.counters
    assert c.late == 0, "a verdict came after its deadline: the caller waited on the PLC"
    assert c.rejected == {"anomaly": len(bad)} and c.passed == n - len(bad)
    assert states == ["down"]
    pulsed = [w.part_id for w in plc.register_writes(10)]
    lost = named_lost(caplog)
    assert len(pulsed) == len(set(pulsed))  # one pulse each
    assert sorted(pulsed + lost) == sorted(bad)  # every rejected part: pulsed or named lost
    assert c.lost == len(lost) > 0
    hang_fire = [i for i in bad if 1.0 <= (triggers[i] - triggers[0]) / 1e9 + FIRE_S <= 2.5]
    assert set(lost) <= set(range(min(hang_fire) - 5, max(hang_fire) + 60))
    assert len(set(hang_fire) - set(lost)) <= 1  # at most the pulse in flight when it hung
    assert max(pulsed) == max(bad)  # pulses resumed once it answered again
    down = lines(caplog, "output down")
    assert len(down) == 1 and down[0].levelno == logging.ERROR
    assert f"127.0.0.1:{plc.port} unit 1: write_registers 10: no answer within 300 ms" in (
        down[0].getMessage()
    )
    assert "rejected parts are not thrown out" in down[0].getMessage()
    assert len(lines(caplog, "output back after")) == 1
    assert len(lines(caplog, "no reject pulse")) <= 4  # one line a second at most
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]


def test_a_plc_that_closes_idle_connections_still_gets_every_pulse(
    plc: Plc, caplog: pytest.LogCaptureFixture
) -> None:
    """The PLC drops a connection idle for 0.2 s; parts come in bursts 0.5 s apart. The first
    write after each idle period meets a dead socket and is sent again at once on a fresh
    connection, within the pulse's budget: no part loses its pulse, and the line that reports
    the retry names the part the pulse was for."""
    caplog.set_level(logging.INFO)
    plc.idle_close_s = 0.2
    out = output(plc, target="registers", registers=10, pulse_ms=20.0)
    out.open()
    bad = {0, 3, 6, 9}
    try:
        for burst in range(4):
            time.sleep(0.5)
            assert plc.idle_closes >= burst + 1
            t = time.monotonic_ns()
            for k in range(3):
                i = burst * 3 + k
                out.expect(i, t)
                out.scheduler.verdict(i, t, i in bad, "anomaly" if i in bad else "")
            time.sleep(FIRE_S + 0.1)
    finally:
        out.close()
    assert sorted(w.part_id for w in plc.register_writes(10)) == sorted(bad)
    c = out.scheduler.counters
    assert (c.lost, c.outages, c.retried) == (0, 0, len(bad))
    retried = lines(caplog, "done on a reopened output")
    assert [r.getMessage().split("pulse for part ")[1].split()[0] for r in retried] == [
        str(i) for i in sorted(bad)
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_plc_restart_is_ridden_out_with_back_off_and_one_line_per_change(
    plc: Plc, caplog: pytest.LogCaptureFixture
) -> None:
    """The PLC goes away for 1.5 s (refusing connections) and comes back on the same port.
    The output goes down once, reopens with back-off (not a connection per write), says once
    that it is back, and pulses resume; the parts in between are counted and named."""
    caplog.set_level(logging.DEBUG)
    n, period = 300, 0.01
    bad = {i for i in range(n) if i % 3 == 0}
    out = output(plc, target="coil", coil=4, reconnect_min_s=0.1, reconnect_max_s=0.4)
    out.open()
    try:
        run_parts(out, n, bad, period, at=((0.8, plc.stop), (2.3, plc.start)), settle_s=0.5)
    finally:
        out.close()
    c = out.scheduler.counters
    ons = [w for w in plc.writes if w.kind == "coil" and w.address == 4 and w.values == (1,)]
    lost = named_lost(caplog)
    assert c.outages == 1 and c.lost == len(lost) > 0
    assert len(ons) + len(lost) == len(bad)
    assert 2 <= c.reopen_attempts <= 8  # 0.1, 0.2, 0.4, 0.4 ... over 1.5 s, not one per part
    assert len(lines(caplog, "output down")) == 1
    assert len(lines(caplog, "output back after")) == 1
    assert ons[-1].t_ns > plc.writes[0].t_ns  # pulses after the restart
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == SCHEDULER_LOG]
    assert len(errors) <= 1 + 3  # the outage, and at most one lost-pulse line a second
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]


def test_a_clean_stop_fires_the_pulses_already_scheduled(plc: Plc) -> None:
    out = output(plc, target="registers", registers=10, delay_ms=300.0)
    out.open()
    t = time.monotonic_ns()
    for i in range(5):
        out.expect(i, t + i * 10_000_000)
        out.scheduler.verdict(i, t + i * 10_000_000, i % 2 == 0, "anomaly")
    out.close(timeout_s=5.0)  # the last pulse is due 340 ms from now
    assert sorted(w.part_id for w in plc.register_writes(10)) == [0, 2, 4]
    assert out.scheduler.counters.lost == 0


def test_a_stop_that_cannot_wait_names_each_part_left_without_its_pulse(
    plc: Plc, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    out = output(plc, target="registers", registers=10, delay_ms=300.0)
    out.open()
    t = time.monotonic_ns()
    for i in range(4):
        out.expect(i, t)
    out.scheduler.verdict(0, t, True, "anomaly")
    out.scheduler.verdict(1, t, False, "")
    out.close(timeout_s=0.05)  # parts 2 and 3 have no verdict yet: rejected by timeout
    assert plc.register_writes(10) == []
    assert sorted(named_lost(caplog)) == [0, 2, 3]
    assert out.scheduler.counters.lost == 3
