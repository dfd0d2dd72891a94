"""Reject outputs: verdict-to-output latency per backend (none, modbus, camera_line).

Each part's verdict arrives 5-40 ms after its trigger and is scheduled for trigger + delay; the
latency is how late the output edge comes after the verdict asked for it: max(scheduled fire
time, verdict time) to the edge (none, camera_line: when the actuator call returned; modbus:
when the loopback pymodbus server received the write). camera_line needs the pylon emulation
(PYLON_CAMEMU) and is skipped without pypylon; modbus is skipped without pymodbus.

    python bench/bench_reject.py --out bench/results/latest.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers
from results_file import entry, merge_results

from hw.reject import NoneActuator, RejectActuator, RejectScheduler

DELAY_S, PULSE_S, MARGIN_S = 0.06, 0.002, 0.01


class Timed:
    """Wraps an actuator, recording (part id, monotonic ns) when each on edge was driven."""

    def __init__(self, inner: RejectActuator) -> None:
        self.inner, self.name = inner, inner.name
        self.edges: dict[int, int] = {}

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def set(self, on: bool, part_id: int | None = None) -> None:
        self.inner.set(on, part_id)
        if on and part_id is not None:
            self.edges[part_id] = time.monotonic_ns()


def run(actuator: RejectActuator, parts: int) -> tuple[dict[int, int], dict[int, int]]:
    """Every part rejected; returns (part -> when its edge was due, part -> edge time)."""
    timed = Timed(actuator)
    # A generous budget: this measures how late the edges come, so none may be given up on.
    sched = RejectScheduler(
        timed, delay_s=DELAY_S, pulse_s=PULSE_S, margin_s=MARGIN_S, max_late_s=1.0
    )
    sched.open()
    due: dict[int, int] = {}
    try:
        for i in range(parts):
            trigger = time.monotonic_ns()
            time.sleep(0.005 + (i % 8) * 0.005)
            now = time.monotonic_ns()
            sched.verdict(i, trigger, True, "anomaly")
            due[i] = max(trigger + round(DELAY_S * 1e9), now)
        time.sleep(DELAY_S + 0.05)
    finally:
        sched.close()
    return due, timed.edges


def summarize(kind: str, due: dict[int, int], edges: dict[int, int]) -> list[dict[str, object]]:
    lat = sorted((edges[p] - due[p]) / 1e6 for p in due if p in edges)
    p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
    print(f"{kind}: {len(lat)} edges, p50 {statistics.median(lat):.3f} ms, p99 {p99:.3f} ms")
    return [
        entry(f"reject_{kind}_latency_ms_p50", statistics.median(lat), "ms", parts=len(lat)),
        entry(f"reject_{kind}_latency_ms_p99", p99, "ms"),
    ]


def bench_modbus(parts: int) -> list[dict[str, object]]:
    from hw.reject.modbus import ModbusActuator
    from tests.integration.plc import Plc

    server = Plc()
    server.start()
    try:
        act = ModbusActuator("127.0.0.1", port=server.port, mode="registers", register=10)
        due, _ = run(act, parts)
    finally:
        server.stop()
    edges = {w.values[0]: w.t_ns for w in server.register_writes(10)}
    return summarize("modbus", due, edges)


def bench_camera_line(parts: int) -> list[dict[str, object]]:
    from hw.camera.basler import BaslerCamera
    from hw.camera.settings import BaslerSettings
    from hw.reject.camera_line import CameraLineActuator

    camera = BaslerCamera(BaslerSettings(serial="0815-0000", roi=(0, 0, 64, 48)))
    camera.open()
    try:
        act = CameraLineActuator(lambda: camera.instant_camera)
        due, edges = run(act, parts)
    finally:
        camera.close()
    return summarize("camera_line", due, edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--parts", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("PYLON_CAMEMU", "1")  # before pypylon is (lazily) imported
    results: list[dict[str, object]] = []
    due, edges = run(NoneActuator(), args.parts)
    results += summarize("none", due, edges)
    benches: list[tuple[str, Any]] = [("modbus", bench_modbus), ("camera_line", bench_camera_line)]
    for kind, bench in benches:
        try:
            results += bench(args.parts)
        except ImportError as exc:
            print(f"{kind}: skipped ({exc})")
    merge_results(args.out, results)


if __name__ == "__main__":
    main()
