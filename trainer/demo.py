"""`make demo`: the main job end to end on synthetic metal parts.

synth → fit → evaluate (report) → `partsight inspect` over the test images with the edge runtime →
a summary: per-class verdict counts, image and pixel AUROC, agreement with the ground truth.
Each step runs the real command line, as a user would.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEMO_SEED = 7


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("build/demo"))
    parser.add_argument("--count", type=int, default=200, help="training images")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args(argv)

    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data, engine, report = work / "data", work / "engine", work / "report"
    started = time.perf_counter()
    steps = [
        (
            "synth",
            [
                "partsight-train",
                "synth",
                str(data),
                "--count",
                str(args.count),
                "--seed",
                str(DEMO_SEED),
            ],
        ),
        (
            "fit",
            [
                "partsight-train",
                "fit",
                "--data",
                str(data),
                "--out",
                str(engine),
                "--epochs",
                str(args.epochs),
                "--mask",
                "auto",
                "--name",
                "demo-bracket",
                "--checkpoint",
                str(work / "model.safetensors"),
            ],
        ),
        (
            "evaluate",
            [
                "partsight-train",
                "evaluate",
                "--engine",
                str(engine),
                "--data",
                str(data),
                "--report",
                str(report),
            ],
        ),
    ]
    timings = {}
    for name, command in steps:
        print(f"\n== {name}: {' '.join(command)}", flush=True)
        t0 = time.perf_counter()
        subprocess.run(_tool(command), check=True)
        timings[name] = time.perf_counter() - t0

    print(f"\n== inspect: partsight inspect --engine {engine} {data / 'test'}", flush=True)
    t0 = time.perf_counter()
    inspected = subprocess.run(
        _tool(
            [
                "partsight",
                "inspect",
                "--engine",
                str(engine),
                str(data / "test"),
                "--heatmaps",
                str(work / "heatmaps"),
            ]
        ),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    timings["inspect"] = time.perf_counter() - t0
    (work / "inspect.jsonl").write_text(inspected)
    print(_summary(data, inspected, report, timings, time.perf_counter() - started))

    from trainer.demo_line import run_line_demo

    print(run_line_demo(engine, data / "test", data / "labels.csv", work / "line"), flush=True)
    return 0


def _tool(command: list[str]) -> list[str]:
    """Run console scripts from the same environment as this interpreter."""
    script = Path(sys.executable).with_name(command[0])
    return [str(script), *command[1:]]


def _summary(
    data: Path, inspected: str, report: Path, timings: dict[str, float], total: float
) -> str:
    labels = {row["file"]: row for row in csv.DictReader((data / "labels.csv").open())}
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    agree = judged = 0
    for line in inspected.splitlines():
        result = json.loads(line)
        row = labels[Path(result["file"]).relative_to(data).as_posix()]
        counts[row["class"]][result["verdict"]] += 1
        if row["class"] != "nuisance":
            judged += 1
            agree += (result["verdict"] == "NOK") == (row["class"] == "defect")
    metrics = json.loads((report / "metrics.json").read_text())

    def num(key: str) -> str:
        return "n/a" if metrics.get(key) is None else f"{metrics[key]:.4f}"

    lines = ["", "== summary"]
    for cls in ("good", "defect", "nuisance"):
        c = counts.get(cls, collections.Counter())
        lines.append(f"{cls:>9}: {sum(c.values()):4d} images  OK {c['OK']:4d}  NOK {c['NOK']:4d}")
    lines += [
        f"image AUROC {num('image_auroc')}   pixel AUROC {num('pixel_auroc')}   "
        f"AUPRO {num('aupro')}   (defects vs good)",
        f"verdicts agreeing with ground truth (good/defect): {agree}/{judged}",
        "nuisances flagged: "
        + ", ".join(
            f"{name} {v['flagged_fraction']:.0%}"
            for name, v in sorted(metrics["nuisance"].items())
            if v.get("flagged_fraction") is not None
        ),
        "time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f", total {total:.0f} s",
        f"report: {report / 'report.html'}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
