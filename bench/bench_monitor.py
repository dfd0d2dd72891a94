"""The metrics monitor: cost per part, the charts' average run lengths, detection delays.

- monitor_us_per_part: every monitor on (9 rates, 8 means, the levels), per result payload:
  reading it (PartObservation.from_result) and observing it, after the warm-up; median of 5
  passes over 20,000 parts. monitor_frame_stats_ms: the frame statistics of a 1024×1024 frame.
- monitor_cusum_arl0 / _arl_1sigma (k = 0.5, h = 5) and monitor_ewma_arl0 / _arl_1sigma
  (λ = 0.1, L = 2.814, asymptotic limits): Monte Carlo, 20,000 runs, seed 2024, next to the
  published value (Montgomery Table 9.3; Lucas & Saccucci 1990) and the Markov chain's.
- monitor_delay_*: parts from the start of a drift to its alert, with the default settings, on
  the synthetic result streams of the tests (tests/edge/monitor_stream.py), over 20 seeds:
  the lamp dimming 1 % per 50 parts, the part shifted 3 px (σ 1 px), the defect rate stepping
  from 2 % to 10 %, ten failed grabs in a row; and the false alarms in 20 × 5,000 stationary
  parts.

    python bench/bench_monitor.py --out bench/results/latest.json
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests/edge/monitor_stream.py
from results_file import entry, merge_results

from edge.config.monitor import MonitorConfig
from edge.monitor import Monitor, PartObservation, frame_stats
from edge.monitor.arl import cusum_arl, ewma_arl, monte_carlo_arl
from edge.monitor.cusum import TabularCusum
from edge.monitor.ewma import Ewma
from tests.edge.monitor_stream import Line, camera_fault, parts

HERE = Path(__file__).resolve().parent
LINE = Line()
WARMUP = 500
SEEDS = 20


def _monitor() -> Monitor:
    config = MonitorConfig.model_validate({"state_file": Path("unused.json")})
    return Monitor(config, engine="bench", deadline_ms=500)


def cost_per_part() -> tuple[float, float]:
    """(CPU µs, wall-clock µs) per part. The CPU time of this process is the figure: on a
    machine shared with other jobs the wall clock mostly measures the wait for a core."""
    rng = np.random.default_rng(0)
    payloads = list(parts(LINE, 1, WARMUP + 20_000, rng))
    cpu, wall = [], []
    for _ in range(5):
        monitor = _monitor()
        for payload in payloads[:WARMUP]:
            monitor.observe(PartObservation.from_result(payload))
        started, started_cpu = time.perf_counter(), time.process_time()
        for payload in payloads[WARMUP:]:
            monitor.observe(PartObservation.from_result(payload))
        cpu.append((time.process_time() - started_cpu) / 20_000 * 1e6)
        wall.append((time.perf_counter() - started) / 20_000 * 1e6)
    return statistics.median(cpu), statistics.median(wall)


def frame_stats_ms() -> tuple[float, float]:
    """(CPU ms, wall-clock ms) per 1024x1024 frame."""
    frame = np.random.default_rng(0).integers(0, 256, (1024, 1024), dtype=np.uint8)
    frame_stats(frame)
    started, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(200):
        frame_stats(frame)
    return (time.process_time() - started_cpu) / 200 * 1e3, (
        time.perf_counter() - started
    ) / 200 * 1e3


def arls() -> list[dict[str, Any]]:
    runs, seed = 20_000, 2024
    out = []
    charts: list[tuple[str, Any, float, float, float]] = [
        ("monitor_cusum_arl0", TabularCusum(0.5, 5.0), 0.0, 465.0, cusum_arl(0.5, 5.0)),
        ("monitor_cusum_arl_1sigma", TabularCusum(0.5, 5.0), 1.0, 10.4, cusum_arl(0.5, 5.0, 1.0)),
        (
            "monitor_ewma_arl0",
            Ewma(0.1, 2.814, "asymptotic"),
            0.0,
            500.0,
            ewma_arl(0.1, 2.814),
        ),
        (
            "monitor_ewma_arl_1sigma",
            Ewma(0.1, 2.814, "asymptotic"),
            1.0,
            10.3,
            ewma_arl(0.1, 2.814, 1.0),
        ),
    ]
    for name, chart, shift, published, chain in charts:
        got = monte_carlo_arl(chart, shift, runs, seed)
        out.append(
            entry(
                name,
                got.arl,
                "parts",
                published=published,
                markov_chain=round(chain, 2),
                stderr=round(got.stderr, 3),
                error_vs_published=f"{100 * (got.arl / published - 1):+.2f} %",
                note=f"Monte Carlo, {runs} runs, seed {seed}, shift {shift} sigma",
            )
        )
        print(
            f"{name}: {got.arl:.2f} ± {got.stderr:.2f} (published {published}, chain {chain:.2f})"
        )
    return out


def _delay(monitor: Monitor, stream: Any, start: int, metric: str) -> tuple[int | None, set[str]]:
    """Parts from `start` to the alert on `metric`, and every metric that alerted."""
    seen: set[str] = set()
    delay = None
    for payload in stream:
        for event in monitor.observe(PartObservation.from_result(payload)):
            if event.kind != "raised":
                continue
            seen.add(event.alert.metric)
            if event.alert.metric == metric and delay is None:
                delay = payload["part_id"] - start + 1
    return delay, seen


def delays() -> list[dict[str, Any]]:
    def dimming(rng: np.random.Generator) -> Any:
        for i in range(1000):
            line = replace(LINE, brightness=LINE.brightness * (1 - 0.01 * i / 50))
            yield from parts(line, 1001 + i, 1, rng)

    def shifted(rng: np.random.Generator) -> Any:
        yield from parts(replace(LINE, pose=(103.0, 80.0, 0.0)), 1001, 500, rng)

    def defects(rng: np.random.Generator) -> Any:
        yield from parts(replace(LINE, defect_rate=0.10), 1001, 2000, rng)

    def grabs(rng: np.random.Generator) -> Any:
        yield from (camera_fault(1001 + i) for i in range(10))
        yield from parts(LINE, 1011, 200, rng)

    cases = [
        ("monitor_delay_dimming_parts", dimming, "brightness", "lamp dimming 1 % per 50 parts"),
        ("monitor_delay_shift_parts", shifted, "pose_x", "part shifted 3 px (sd 1 px)"),
        ("monitor_delay_defect_rate_parts", defects, "anomaly_rate", "defects 2 % -> 10 %"),
        ("monitor_delay_failed_grabs_parts", grabs, "camera_rate", "10 failed grabs in a row"),
    ]
    out = []
    for name, stream, metric, what in cases:
        found, others = [], set()
        for seed in range(SEEDS):
            rng = np.random.default_rng(seed)
            monitor = _monitor()
            for payload in parts(LINE, 1, 1000, rng):
                monitor.observe(PartObservation.from_result(payload))
            delay, seen = _delay(monitor, stream(rng), 1001, metric)
            if delay is not None:
                found.append(delay)
            others |= seen - {metric}
        out.append(
            entry(
                name,
                statistics.median(found) if found else float("nan"),
                "parts",
                what=what,
                detected=f"{len(found)}/{SEEDS} seeds",
                min=min(found, default=None),
                max=max(found, default=None),
                other_alerts=sorted(others),
                note="median over seeds; default [monitor] settings; warm-up 500 parts",
            )
        )
        print(f"{name}: median {out[-1]['value']} parts, {len(found)}/{SEEDS}, others {others}")
    false_alarms = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(100 + seed)
        monitor = _monitor()
        for payload in parts(LINE, 1, 5500, rng):
            false_alarms += sum(
                e.kind == "raised" for e in monitor.observe(PartObservation.from_result(payload))
            )
    out.append(
        entry(
            "monitor_false_alarms_per_5000_parts",
            false_alarms / SEEDS,
            "alerts",
            note=f"{SEEDS} stationary runs of 5000 parts after the warm-up; 0.13 expected",
        )
    )
    print(f"false alarms: {false_alarms} in {SEEDS} x 5000 parts")
    return out


def main() -> int:
    logging.getLogger("edge.monitor").setLevel(logging.ERROR)  # the alerts are counted here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    us, us_wall = cost_per_part()
    ms, ms_wall = frame_stats_ms()
    print(f"monitor: {us:.1f} us CPU per part ({us_wall:.1f} wall); frame statistics {ms:.2f} ms")
    entries = [
        entry(
            "monitor_us_per_part",
            us,
            "us",
            goal=50,
            wall_clock_us=round(us_wall, 1),
            load_average=round(os.getloadavg()[0], 2),
            note="CPU time; all monitors on, reading the result payload included; after the "
            "warm-up",
        ),
        entry(
            "monitor_frame_stats_ms",
            ms,
            "ms",
            wall_clock_ms=round(ms_wall, 2),
            note="CPU time; 1024x1024 mono, subsampled to 512x512",
        ),
    ]
    entries += arls()
    entries += delays()
    merge_results(args.out, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
