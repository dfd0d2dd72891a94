"""Engine hot swap on the running line: how long a swap takes, and what it does to the
trigger-to-verdict latency of the parts around it.

`partsight run` as a subprocess on the replay camera (20 parts/s) running the engine store, a
local Mosquitto, 64x64 mono synthetic frames judged by ONNX Runtime with an engine of the test
suite's size (`--size 128` for a bigger one; the line must stay within what the machine can judge,
or the latencies measure a backlog, not the swap). After a warm-up, SCADA
activates the other installed version over MQTT (`cmd/engine/activate`) several times, then a
technician rolls back and reloads (SIGHUP). Figures, merged into the results file:

- engine_swap_load_ms: verify (signature, hashes) + load + golden samples, as the daemon
  reports it in its answer: median over the swaps, max in `max`;
- engine_swap_command_ms: from publishing the command to its answer arriving (median, max);
- engine_swap_latency_max_ms: the longest trigger-to-verdict latency of the parts triggered
  between a command and 1 s after its switch, against the steady state before the first swap
  (p50, p99, max of `baseline_*`), both over the parts an engine judged;
- the run's parts, lost and duplicated results, and how many results named the wrong engine
  for their trigger time (all three must be 0).

    python bench/bench_engine_swap.py --out bench/results/latest.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers
from results_file import entry, merge_results

from edge.bundle import load_bundle
from tests.integration.broker import Broker
from tests.integration.swap_line import VERSIONS, Answer, SwapLine, prepare_store

SIZE = 64
RATE_HZ = 20.0
WARMUP_S = 5.0
BETWEEN_S = 5.0  # steady running between two swaps
WINDOW_NS = 1_000_000_000  # "around a swap": from its command to 1 s after its switch


def engine_and_frames(work: Path, size: int) -> tuple[Path, Path]:
    """A small engine for size x size mono frames (quality does not matter for timing)."""
    from trainer.fit import FitConfig, fit
    from trainer.model import DAEConfig
    from trainer.synth import SynthConfig, write_dataset
    from trainer.train import TrainConfig

    data = work / "data"
    write_dataset(data, 60, SynthConfig(size=(size, size)), seed=7, progress=False)
    print("training a small engine for the benchmark...", flush=True)
    config = FitConfig(
        model=DAEConfig(width=8, depth=3, bottleneck=4)
        if size <= 64
        else DAEConfig(width=16, depth=3, bottleneck=16),
        train=TrainConfig(epochs=4, batch_size=16, seed=0),
        name="bench-swap",
        show_progress=False,
    )
    return fit(data, work / "engine", config).engine, data / "test"


def measure(work: Path, swaps: int, rate_hz: float, size: int) -> list[dict[str, object]]:
    engine, frames = engine_and_frames(work, size)
    name = load_bundle(engine).manifest.name
    _, trusted = prepare_store(work / "station", engine)
    broker = Broker(work / "broker")
    broker.start()
    line = SwapLine.start(work / "station", trusted, frames, broker, rate_hz)
    answers: list[Answer] = []
    try:
        line.wait_parts(1)
        time.sleep(WARMUP_S)
        for i in range(swaps):
            answers.append(line.activate(name, VERSIONS[(i + 1) % 2]))
            time.sleep(BETWEEN_S)
        answers.append(line.rollback_and_reload())
        time.sleep(BETWEEN_S)
        load = os.getloadavg()[0]
        code, parts = line.stop()
    finally:
        line.close()
        broker.stop()
    if code != 0:
        raise RuntimeError(f"the daemon exited with {code}")
    note = (
        f"{size}x{size} mono, replay camera at {rate_hz:g} parts/s, ONNX Runtime, engine "
        f"store, Mosquitto; {swaps} MQTT activations + 1 rollback/SIGHUP over {parts} parts; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    return figures(line.results(), parts, answers, note)


def figures(
    results: list[dict[str, Any]], parts: int, answers: list[Answer], note: str
) -> list[dict[str, object]]:
    if not all(a.payload["ok"] for a in answers):
        raise RuntimeError(f"a swap was refused: {[a.payload for a in answers]}")
    unique = {r["part_id"]: r for r in results}
    switches = sorted(
        (a.payload["active_since_monotonic_ns"], a.payload["engine"]["version"]) for a in answers
    )
    judged = {pid: r for pid, r in unique.items() if r["engine"] is not None}
    wrong = 0
    for r in judged.values():
        active = VERSIONS[0]
        for since, version in switches:
            if r["trigger_monotonic_ns"] >= since:
                active = version
        wrong += r["engine"]["version"] != active
    total = {pid: r["latency_ms"]["total"] for pid, r in judged.items()}
    trigger = {pid: r["trigger_monotonic_ns"] for pid, r in judged.items()}
    first = min(trigger.values())
    baseline = sorted(total[p] for p in judged if first + 2e9 <= trigger[p] < answers[0].sent_ns)
    around = []
    for a in answers:
        end = a.payload["active_since_monotonic_ns"] + WINDOW_NS
        around.append(max(total[p] for p in judged if a.sent_ns <= trigger[p] < end))
    load = [a.payload["load_ms"] for a in answers]
    command = [(a.arrived_ns - a.sent_ns) / 1e6 for a in answers]
    reasons = [r["reason"] for r in unique.values()]
    p99 = baseline[min(len(baseline) - 1, int(0.99 * len(baseline)))]
    return [
        entry("engine_swap_load_ms", statistics.median(load), "ms", max=round(max(load), 1),
              each=[round(v, 1) for v in load], note=note),
        entry("engine_swap_command_ms", statistics.median(command), "ms",
              max=round(max(command), 1)),
        entry("engine_swap_latency_max_ms", max(around), "ms",
              each=[round(v, 1) for v in around],
              baseline_p50=round(statistics.median(baseline), 2), baseline_p99=round(p99, 2),
              baseline_max=round(max(baseline), 2)),
        entry("engine_swap_parts", parts, "parts", lost=parts - len(unique),
              duplicated=len(results) - len(unique), wrong_engine=wrong,
              overload=reasons.count("overload"), timeout=reasons.count("timeout")),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--swaps", type=int, default=4, help="MQTT activations (plus 1 reload)")
    parser.add_argument("--rate", type=float, default=RATE_HZ, help="parts per second")
    parser.add_argument("--size", type=int, default=SIZE, help="frame and model size, pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(Path(tmp), args.swaps, args.rate, args.size)
    for r in results:
        extra = {k: v for k, v in r.items() if k not in ("name", "value", "unit", "note")}
        print(f"{r['name']}: {r['value']} {r['unit']} {extra}")
    merge_results(args.out, results)


if __name__ == "__main__":
    main()
