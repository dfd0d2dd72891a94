"""End to end with registration: an engine trained and evaluated on randomly posed 512x512 frames
vs one trained and evaluated on pre-aligned 128x128 crops of the same part family (same seed,
same counts, same network and epochs). Registration should cost no accuracy: image AUROC within
0.01.

    python bench/bench_registered_engine.py --out bench/results/latest.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import entry, merge_results

from trainer.evaluate import evaluate
from trainer.fit import FitConfig, fit
from trainer.synth import SynthConfig, write_dataset
from trainer.train import TrainConfig

SEED = 7
PART = (128, 128)


def run_case(
    name: str, synth: SynthConfig, config: FitConfig, count: int, work: Path
) -> dict[str, float]:
    data = work / name / "data"
    write_dataset(data, count, synth, SEED, progress=False)
    started = time.perf_counter()
    result = fit(data, work / name / "engine", config)
    evaluation = evaluate(result.engine, data, work / name / "report", show_progress=False)
    metrics = evaluation.metrics
    seconds = time.perf_counter() - started
    print(f"{name}: image AUROC {metrics['image_auroc']:.4f}, "
          f"pixel AUROC {metrics['pixel_auroc']}, {seconds:.0f} s", flush=True)  # fmt: skip
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    base = FitConfig(train=TrainConfig(epochs=args.epochs), show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        aligned = run_case(
            "aligned", SynthConfig(size=PART),
            replace(base, mask="auto", register="off"), args.count, work,
        )  # fmt: skip
        posed = run_case(
            "posed", SynthConfig(size=PART, frame=(512, 512), random_pose=True, clutter=True),
            replace(base, register="on"), args.count, work,
        )  # fmt: skip
    gap = abs(aligned["image_auroc"] - posed["image_auroc"])
    note = f"{args.count} training images, {args.epochs} epochs, seed {SEED}"
    merge_results(args.out, [
        entry("engine_aligned_image_auroc", aligned["image_auroc"], "auroc", note=note),
        entry("engine_posed_registered_image_auroc", posed["image_auroc"], "auroc", note=note),
        entry("engine_registered_vs_aligned_auroc_gap", gap, "auroc"),
        entry("engine_posed_unregistered_parts", posed["unregistered"], "parts"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
