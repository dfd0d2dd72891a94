"""`make demo`: the main job end to end on synthetic metal parts.

synth → fit → classify (the heatmap classifier, from LABELLED images per type that a technician
would mark: the first ones of each type, kept apart from the test images) → evaluate (report) →
`partsight inspect` over the test images with the edge runtime → a summary: per-class verdict
counts, image and pixel AUROC, the nuisances the DAE alone flags and the classifier passes, the
defects it lets through, agreement with the ground truth → the line daemon on the camera
emulation. Each step runs the real command line, as a user would.
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

from trainer.labelled import split_labelled

DEMO_SEED = 7
LABELLED = 5  # labelled images per type for the classifier
TEST_PER_TYPE = 20


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
    labelled, test = work / "labelled", work / "test"
    classified = work / "engine-classified"
    started = time.perf_counter()
    steps = [
        (
            "synth",
            [
                "partsight-train", "synth", str(data), "--count", str(args.count),
                "--seed", str(DEMO_SEED), "--test-per-type", str(LABELLED + TEST_PER_TYPE),
            ],
        ),
        (
            "fit",
            [
                "partsight-train", "fit", "--data", str(data), "--out", str(engine),
                "--epochs", str(args.epochs), "--mask", "auto", "--name", "demo-bracket",
                "--checkpoint", str(work / "model.safetensors"),
            ],
        ),
        (
            "classify",
            [
                "partsight-train", "classify", "--engine", str(engine), "--labelled",
                str(labelled), "--out", str(classified), "--per-type", str(LABELLED),
            ],
        ),
        (
            "evaluate",
            [
                "partsight-train", "evaluate", "--engine", str(classified), "--data", str(test),
                "--report", str(report),
            ],
        ),
    ]  # fmt: skip
    timings = {}
    for name, command in steps:
        print(f"\n== {name}: {' '.join(command)}", flush=True)
        t0 = time.perf_counter()
        subprocess.run(_tool(command), check=True)
        timings[name] = time.perf_counter() - t0
        if name == "synth":  # a technician's few labels, kept apart from what is judged
            split_labelled(data, LABELLED, labelled, test)
            print(f"labelled: the first {LABELLED} test images of each type in {labelled}; "
                  f"judged: the other {TEST_PER_TYPE} of each in {test}")  # fmt: skip

    print(f"\n== inspect: partsight inspect --engine {classified} {test / 'test'}", flush=True)
    t0 = time.perf_counter()
    inspected = subprocess.run(
        _tool(
            [
                "partsight",
                "inspect",
                "--engine",
                str(classified),
                str(test / "test"),
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
    print(_summary(test, inspected, report, timings, time.perf_counter() - started))

    from trainer.demo_line import run_line_demo

    print(run_line_demo(classified, test / "test", test / "labels.csv", work / "line"), flush=True)
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
        judged += 1
        agree += (result["verdict"] == "OK") == (row["class"] != "defect")
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
        f"verdicts agreeing with ground truth (good and nuisance OK, defect NOK): {agree}/{judged}",
        "nuisances the DAE alone flags: "
        + ", ".join(
            f"{name} {v['flagged_fraction']:.0%}"
            for name, v in sorted(metrics["nuisance"].items())
            if v.get("flagged_fraction") is not None
        ),
        _classifier_line(metrics),
        "time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f", total {total:.0f} s",
        f"report: {report / 'report.html'}",
    ]
    return "\n".join(lines)


def _classifier_line(metrics: dict[str, object]) -> str:
    verdicts = metrics["verdicts"]
    assert isinstance(verdicts, dict)
    per_type = verdicts["per_type"]

    def passed(cls: str) -> str:
        return ", ".join(
            f"{name} {m['passed']:.0%}" for name, m in sorted(per_type.items())
            if m["class"] == cls
        )  # fmt: skip

    return (
        f"with the classifier ({LABELLED} labelled images per type): nuisances passed "
        f"{verdicts['nuisance_pass_rate']:.0%} ({passed('nuisance')}); defects passed "
        f"{verdicts['defect_escape_rate']:.1%}; good parts passed {verdicts['good_pass_rate']:.0%}"
    )


if __name__ == "__main__":
    sys.exit(main())
