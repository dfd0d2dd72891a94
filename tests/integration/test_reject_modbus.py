"""The modbus reject output against a real pymodbus TCP server on a free loopback port.

The server records every coil and register write with the monotonic time it arrived. Runs of a
few hundred parts, with out-of-order verdicts and a known set of rejected parts, check that each
rejected part gets exactly one pulse at trigger + delay, and no other part gets one.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("pymodbus")

from edge.config.reject import ModbusRejectConfig
from edge.daemon.reject import ScheduledRejectOutput, create_reject_output

TOLERANCE_MS = 5.0


@dataclass(frozen=True)
class Write:
    t_ns: int
    kind: str  # "coil" | "registers"
    address: int
    values: tuple[int, ...]


class ModbusRecorder:
    """A pymodbus TCP server in its own thread that records every write it receives."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.writes: list[Write] = []
        self._loop = asyncio.new_event_loop()
        self._server: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modbus-server", daemon=True)

    def _trace(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            name = type(pdu).__name__
            if name == "WriteSingleCoilRequest":
                self.writes.append(
                    Write(time.monotonic_ns(), "coil", pdu.address, (int(pdu.bits[0]),))
                )
            elif name in ("WriteMultipleRegistersRequest", "WriteSingleRegisterRequest"):
                self.writes.append(
                    Write(time.monotonic_ns(), "registers", pdu.address, tuple(pdu.registers))
                )
        return pdu

    def _run(self) -> None:
        from pymodbus.datastore import (
            ModbusDeviceContext,
            ModbusSequentialDataBlock,
            ModbusServerContext,
        )
        from pymodbus.server import ModbusTcpServer

        async def serve() -> None:
            block = ModbusSequentialDataBlock
            context = ModbusServerContext(
                ModbusDeviceContext(co=block(1, [0] * 200), hr=block(1, [0] * 200))
            )
            self._server = ModbusTcpServer(
                context, address=("127.0.0.1", self.port), trace_pdu=self._trace
            )
            self._loop.call_soon(self._ready.set)
            await self._server.serve_forever()

        self._loop.run_until_complete(serve())

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(5.0)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # wait until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("modbus test server did not start")

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5.0)
        self._thread.join(5.0)


@pytest.fixture
def plc() -> Iterator[ModbusRecorder]:
    server = ModbusRecorder()
    server.start()
    yield server
    server.stop()


def output(plc: ModbusRecorder, **kw: Any) -> ScheduledRejectOutput:
    fields: dict[str, Any] = {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": plc.port,
        "delay_ms": 150.0,
        "pulse_ms": 4.0,
        "margin_ms": 20.0,
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
) -> dict[int, int]:
    """Trigger n parts every period_s; verdicts come 5-80 ms later, out of order (slow parts:
    after the deadline). Returns each part's trigger_ns."""
    rng = random.Random(5)
    start = time.monotonic_ns() + 20_000_000
    triggers = {i: start + round(i * period_s * 1e9) for i in range(n)}
    events: list[tuple[int, int, int]] = []  # (due_ns, kind 0=expect 1=verdict, part)
    for i, t in triggers.items():
        events.append((t, 0, i))
        lag = 0.2 if i in slow else rng.uniform(0.005, 0.08)
        events.append((t + round(lag * 1e9), 1, i))
    events.sort()
    for due, kind, i in events:
        while (wait := due - time.monotonic_ns()) > 0:
            time.sleep(min(wait / 1e9, 0.002))
        if kind == 0:
            out.expect(i, triggers[i])
        else:
            out.scheduler.verdict(i, triggers[i], i in bad, "anomaly" if i in bad else "")
    time.sleep(0.3)  # let the last pulses go out
    return triggers


def errors_ms(
    writes: list[tuple[int, int]], triggers: dict[int, int], delay_ms: float
) -> list[float]:
    return [(t - triggers[p]) / 1e6 - delay_ms for t, p in writes]


def test_registers_each_rejected_part_exactly_once_on_time(plc: ModbusRecorder) -> None:
    n = 300
    bad = {i for i in range(n) if i % 7 == 3} | {11, 12, 13}
    out = output(plc, target="registers", registers=10)
    out.open()
    try:
        triggers = run_parts(out, n, bad, period_s=0.01)
    finally:
        out.close()
    pulses = [(w.t_ns, w.values[0] | w.values[1] << 16) for w in plc.writes if w.address == 10]
    assert sorted(p for _, p in pulses) == sorted(bad)  # exactly one each, no OK part
    assert all(w.values[2] == 1 for w in plc.writes if w.address == 10)
    err = errors_ms(pulses, triggers, 150.0)
    print(f"registers: timing error ms min {min(err):.3f} max {max(err):.3f}")
    assert max(abs(e) for e in err) <= TOLERANCE_MS
    assert out.scheduler.counters.rejected == {"anomaly": len(bad)}
    assert out.scheduler.counters.passed == n - len(bad)


def test_coil_pulses_on_time_with_width(plc: ModbusRecorder) -> None:
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


def test_slow_verdict_is_rejected_timeout_never_passed(plc: ModbusRecorder) -> None:
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


def test_heartbeat_stops_within_two_periods(plc: ModbusRecorder) -> None:
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
