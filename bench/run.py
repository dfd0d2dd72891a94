"""`make bench`: every benchmark, each in its own process, figures merged into one results file.

A benchmark that fails is reported and the others still run; the exit status says whether all
passed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["bench_tiles.py"],
    ["bench_inference.py"],
    ["bench_registration.py", "--frames", "300", "--opencv-frames", "5"],
    ["bench_registered_engine.py"],
    ["bench_daemon.py"],
    ["bench_reject.py"],
    ["bench_monitor.py"],
    ["bench_engine_swap.py"],
    ["bench_classifier.py"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. bench_inference)")
    args = parser.parse_args()
    failed = []
    for script, *extra in BENCHMARKS:
        if args.only and Path(script).stem not in args.only:
            continue
        if not (HERE / script).is_file():
            print(f"== {script}: missing, skipped", flush=True)
            continue
        print(f"== {script}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *extra, "--out", str(args.out)])
        print(f"== {script}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
