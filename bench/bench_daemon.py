"""The whole line daemon, sustained: parts/s, trigger-to-verdict latency and resident memory;
then the same with a PLC as the reject output, healthy and hanging.

`partsight run`'s daemon as a subprocess on the pylon camera emulation (software trigger,
free-running: the next part as soon as the pipeline has room) replaying 128x128 mono synthetic
frames, judged by ONNX Runtime, every result stored in the outbox (fsync) and published to a
local Mosquitto. The engine is build/demo/engine when `make demo` left one of that size, else a
small one trained here in a minute or two (quality does not matter for throughput).

The PLC run adds a Modbus/TCP reject output (verdict registers) to a pymodbus server (the
tests' PLC, tests/integration/plc.py) that answers for `--plc-phase` seconds, then hangs (reads
every request, answers none) as long, `--plc-rounds` times, in one daemon run: parts/s and
latency in each kind of phase (from the results' arrival, the first second of each phase left
out), and their ratio. A hanging PLC must cost the reject output, not the pipeline: the ratio
should be about 1.

    python bench/bench_daemon.py --out bench/results/latest.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers
from results_file import entry, merge_results

from tests.integration.plc import Plc
from trainer.demo_line import Mosquitto, ResultListener, link_frames
from trainer.station_files import (
    LOOPBACK,
    daemon_running,
    emulated_camera,
    station_config,
    write_config,
)

SIZE = (128, 128)  # the demo's frames (W, H)
DEMO_ENGINE = Path("build/demo/engine")
SEED = 7


def engine_and_frames(work: Path) -> tuple[Path, Path, str]:
    """An engine for 128x128 mono frames and a folder of such frames."""
    from trainer.synth import SynthConfig, write_dataset

    data = work / "data"
    write_dataset(data, 60, SynthConfig(size=SIZE), seed=SEED, progress=False)
    if _fits(DEMO_ENGINE):
        return DEMO_ENGINE.resolve(), data / "test", f"{DEMO_ENGINE} (make demo)"
    from trainer.fit import FitConfig, fit
    from trainer.model import DAEConfig
    from trainer.train import TrainConfig

    print("training a small engine for the benchmark...", flush=True)
    config = FitConfig(
        model=DAEConfig(width=16, depth=3, bottleneck=16),
        train=TrainConfig(epochs=4, batch_size=16, seed=0),
        name="bench-daemon",
        show_progress=False,
    )
    return fit(data, work / "engine", config).engine, data / "test", "a small engine trained here"


def _fits(engine: Path) -> bool:
    from edge.bundle import load_bundle
    from edge.errors import PartSightError

    if not (engine / "manifest.json").is_file():
        return False
    try:
        spec = load_bundle(engine).manifest.input
    except PartSightError:
        return False
    return (spec.source_width, spec.source_height, spec.channels) == (*SIZE, 1)


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM), MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


@contextlib.contextmanager
def running_daemon(
    config: Path, log_path: Path, listener: ResultListener, warmup_s: float
) -> Iterator[subprocess.Popen[bytes]]:
    """The daemon on `config`, logging to `log_path`, once its first result reached `listener`
    and `warmup_s` more have passed; stopped with SIGTERM when the block ends (killed if it
    raised). RuntimeError when it does not start within 120 s or exits other than 0."""
    with daemon_running(config, log_path) as daemon:
        deadline = time.monotonic() + 120
        while not listener.arrivals:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text()[-2000:])
            time.sleep(0.1)
        time.sleep(warmup_s)
        yield daemon


def measure(
    work: Path, engine: Path, engine_note: str, seconds: float, warmup_s: float
) -> list[dict[str, object]]:
    broker = Mosquitto(work / "broker")
    broker.start()
    config = write_config(
        work / "partsight.toml",
        station_config(
            state_dir=work / "state",
            engine=engine,
            camera=emulated_camera(work / "frames", SIZE),
            mqtt={"host": LOOPBACK, "port": broker.port},
            pipeline={"deadline_ms": 1000, "trigger": {"free_run": True}},
            log_level="warning",
        ),
    )
    listener = ResultListener(broker.port)
    try:
        with running_daemon(config, work / "daemon.log", listener, warmup_s) as daemon:
            start = time.monotonic()
            time.sleep(seconds)
            end = time.monotonic()
            rss, peak = rss_mb(daemon.pid)
            load = os.getloadavg()[0]
    finally:
        listener.close()
        broker.stop()
    window = [pid for t, pid in listener.arrivals if start <= t < end]
    results = listener.snapshot()
    latencies = sorted(results[pid]["latency_ms"]["total"] for pid in window)
    reasons = [results[pid]["reason"] for pid in window]
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    note = (
        f"{SIZE[0]}x{SIZE[1]} mono, pylon emulation, software trigger free run, ONNX Runtime, "
        f"outbox + Mosquitto; {len(window)} parts over {end - start:.0f} s; {engine_note}"
    )
    stages = {
        name: round(
            statistics.median(results[pid]["latency_ms"].get(name, 0.0) for pid in window), 3
        )
        for name in ("grab", "queue", "inspect", "inference")
    }
    return [
        entry(
            "daemon_parts_per_s",
            len(window) / (end - start),
            "parts/s",
            note=note,
            overload=reasons.count("overload"),
            timeout=reasons.count("timeout"),
            load_average=round(load, 2),
        ),
        entry("daemon_latency_ms_p50", statistics.median(latencies), "ms", stages_p50=stages),
        entry("daemon_latency_ms_p99", p99, "ms"),
        entry("daemon_rss_mb", rss, "MiB", peak_mb=round(peak, 1)),
    ]


SETTLE_S = 1.0  # the start of each PLC phase, left out of its figures


def measure_plc(
    work: Path, engine: Path, engine_note: str, phase_s: float, rounds: int, warmup_s: float
) -> list[dict[str, object]]:
    plc = Plc()
    plc.start()
    broker = Mosquitto(work / "broker-plc")
    broker.start()
    data = station_config(
        state_dir=work / "state-plc",
        engine=engine,
        camera=emulated_camera(work / "frames", SIZE),
        mqtt={"host": LOOPBACK, "port": broker.port},
        pipeline={"deadline_ms": 1000, "trigger": {"free_run": True}},
        log_level="warning",
    )
    data["reject"] = {
        "kind": "modbus",
        "host": LOOPBACK,
        "port": plc.port,
        "target": "registers",
        "registers": 10,
        "delay_ms": 1500.0,
        "margin_ms": 200.0,
        "timeout_ms": 200.0,
        "reconnect_min_s": 0.5,
        "reconnect_max_s": 2.0,
    }
    config = write_config(work / "partsight-plc.toml", data)
    listener = ResultListener(broker.port)
    phases: list[tuple[str, float, float]] = []
    try:
        with running_daemon(config, work / "daemon-plc.log", listener, warmup_s):
            load = os.getloadavg()[0]
            for _ in range(rounds):
                for state in ("healthy", "hanging"):
                    (plc.hang.set if state == "hanging" else plc.hang.clear)()
                    start = time.monotonic()
                    time.sleep(phase_s)
                    phases.append((state, start + SETTLE_S, time.monotonic()))
            plc.hang.clear()
    finally:
        listener.close()
        broker.stop()
        plc.stop()
    results = listener.snapshot()
    figures: dict[str, dict[str, float]] = {}
    for state in ("healthy", "hanging"):
        windows = [(a, b) for s, a, b in phases if s == state]
        ids = [pid for t, pid in listener.arrivals if any(a <= t < b for a, b in windows)]
        span = sum(b - a for a, b in windows)
        latencies = sorted(results[pid]["latency_ms"]["total"] for pid in ids)
        reasons = [results[pid]["reason"] for pid in ids]
        figures[state] = {
            "parts_per_s": len(ids) / span,
            "parts": len(ids),
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "timeout": reasons.count("timeout"),
            "overload": reasons.count("overload"),
        }
    healthy, hanging = figures["healthy"], figures["hanging"]
    rejected = {pid for pid, r in results.items() if r["verdict"] != "OK"}
    pulsed = {w.values[0] for w in plc.register_writes(10)}
    note = (
        f"{rounds} x ({phase_s:g} s answering + {phase_s:g} s hanging) in one run, first "
        f"{SETTLE_S:g} s of each phase left out; modbus registers, timeout 200 ms; "
        f"{len(rejected)} rejected parts, {len(rejected - pulsed)} without a pulse; {engine_note}"
    )
    out = []
    for state, f in figures.items():
        out += [
            entry(
                f"daemon_plc_{state}_parts_per_s",
                f["parts_per_s"],
                "parts/s",
                parts=int(f["parts"]),
                timeout=int(f["timeout"]),
                overload=int(f["overload"]),
                load_average=round(load, 2),
                note=note,
            ),
            entry(f"daemon_plc_{state}_latency_ms_p50", f["p50"], "ms"),
            entry(f"daemon_plc_{state}_latency_ms_p99", f["p99"], "ms"),
        ]
    ratio = hanging["parts_per_s"] / healthy["parts_per_s"]
    out.append(entry("daemon_plc_hanging_vs_healthy", ratio, "ratio", note="target: >= 0.9"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, after warm-up")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--plc-phase", type=float, default=6.0, help="seconds per PLC phase")
    parser.add_argument("--plc-rounds", type=int, default=3, help="answering + hanging rounds")
    parser.add_argument("--only-plc", action="store_true", help="skip the plain measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine, frames, engine_note = engine_and_frames(work)
        _, size = link_frames(frames, work / "frames")
        assert size == SIZE, f"frames are {size}, expected {SIZE}"
        results = []
        if not args.only_plc:
            results += measure(work, engine, engine_note, args.seconds, args.warmup)
        results += measure_plc(
            work, engine, engine_note, args.plc_phase, args.plc_rounds, args.warmup
        )
    for r in results:
        print(f"{r['name']}: {r['value']} {r['unit']}")
    merge_results(args.out, results)


if __name__ == "__main__":
    main()
