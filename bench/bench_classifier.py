"""The heatmap classifier on the synthetic line: does it pass nuisances without letting a
defect through?

One synthetic part family (seed 7, 128x128): 200 good training images for the DAE; per anomaly
type (10 defect types, four of them a defect under an oil film, on a lit frame, beside dust or
beside a fibre, and the 4 hard nuisances) and for good parts, a labelled pool of `--pool` images
the classifier may learn from and `--test` other images it is judged on. Figures:

- with 20 and with 5 labelled images per type (`partsight-train classify`, default features),
  the line's verdicts on the test set (`partsight-train evaluate`, the edge runtime):
  nuisance_pass_rate, defect_escape_rate (mixed parts included), good_pass_rate;
- the learning curve (5, 10, 20, 50 per type, 3 seeds) for every feature set, in the
  evaluation report and in the results' notes;
- the out-of-distribution guard: each defect type in turn left out of the classifier's
  training (20 per type of the others): the fraction of that unseen type still rejected;
- classifier_ms_per_part: features + MLP (ONNX Runtime) per anomalous part, one part at a time.

    python bench/bench_classifier.py --out bench/results/latest.json [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import entry, merge_results

from edge.inspector import Inspector
from edge.stages.decide import OK, OOD, DecisionPolicy, decide
from trainer.classifier import MlpConfig
from trainer.classify import ClassifyConfig, classify
from trainer.classify_defaults import DEFAULT_FEATURES, DEFAULT_OOD_MARGIN, DEFAULT_PASS_PROBABILITY
from trainer.evaluate import evaluate
from trainer.feature_table import FeatureExtractor, FeatureTable
from trainer.fit import FitConfig, fit
from trainer.labelled import Labelled, LabelledSet, draw_per_type, split_labelled
from trainer.learning_curve import fit as fit_classifier
from trainer.part_training import classify_parts
from trainer.synth import DEFECT_TYPES, MIXED_TYPES, NUISANCE_TYPES, SynthConfig, write_dataset
from trainer.train import TrainConfig

SEED = 7


def line_rates(engine: Path, test: Path, report: Path, pool: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    metrics = evaluate(engine, test, report, show_progress=False, learning_curve=pool).metrics
    verdicts = metrics["verdicts"]
    print(f"{engine.name}: nuisances passed {verdicts['nuisance_pass_rate']:.3f}, defects "
          f"passed {verdicts['defect_escape_rate']:.4f}, good passed "
          f"{verdicts['good_pass_rate']:.3f} ({time.perf_counter() - started:.0f} s)",
          flush=True)  # fmt: skip
    return metrics


def hold_out(pool: FeatureTable, test: FeatureTable, threshold: float) -> dict[str, Any]:
    """Each defect type left out of training in turn: how much of it is still rejected, and by
    what (the MLP, or the out-of-distribution guard)."""
    out: dict[str, Any] = {}
    for left_out in DEFECT_TYPES:
        rows = draw_per_type(pool.items, 20, SEED, exclude=[left_out])
        trained, guard = fit_classifier(pool, rows, DEFAULT_FEATURES, MlpConfig(seed=SEED),
                                        DEFAULT_OOD_MARGIN)  # fmt: skip
        policy = DecisionPolicy(threshold, DEFAULT_PASS_PROBABILITY, guard, guard.margin)
        of_type = [k for k, i in enumerate(test.items) if i.type == left_out]
        subset = test.subset(of_type)
        decisions = [
            decide(float(score), policy, answer)
            for score, answer in zip(
                subset.scores, classify_parts(trained, subset, DEFAULT_FEATURES), strict=True
            )
        ]
        flagged = int(np.sum(subset.scores >= threshold))
        rejected = sum(d.verdict != OK for d in decisions)
        by_guard = sum(d.reason == OOD for d in decisions)
        out[left_out] = {
            "images": len(decisions),
            "flagged": flagged,
            "rejected": rejected,
            "rejected_of_flagged": rejected / flagged if flagged else None,
            "by_guard": by_guard,
        }
        print(f"held out {left_out}: {rejected}/{flagged} flagged rejected "
              f"({by_guard} by the guard)", flush=True)  # fmt: skip
    return out


def classifier_ms(engine: Path, test: FeatureTable, parts: int = 200) -> float:
    """Features + MLP per anomalous part, one at a time, on the engine's own classifier stage."""
    inspector = Inspector.open(engine)
    classifier = inspector.classifier
    assert classifier is not None
    flagged = [s for s in test.scored if s.score >= inspector.threshold][:parts]
    views = [classifier.view(s, inspector.threshold) for s in flagged]
    classifier.classify(views[:5])  # warm up ONNX Runtime
    started = time.perf_counter()
    for view in views:
        classifier.classify([view])
    return (time.perf_counter() - started) * 1e3 / len(views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: temporary)")
    parser.add_argument("--count", type=int, default=200, help="good training images")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pool", type=int, default=50, help="labelled pool per type")
    parser.add_argument("--test", type=int, default=100, help="test images per type")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data, pool_dir, test_dir = work / "data", work / "pool", work / "test"
        write_dataset(data, args.count, SynthConfig(size=(128, 128)), SEED, progress=False,
                      test_per_type=args.pool + args.test, overwrite=True)  # fmt: skip
        split_labelled(data, args.pool, pool_dir, test_dir)
        print(f"data: {time.perf_counter() - started:.0f} s", flush=True)
        config = FitConfig(train=TrainConfig(epochs=args.epochs, seed=SEED), mask="auto",
                           name="bench-classifier", show_progress=False)  # fmt: skip
        engine = fit(data, work / "engine", config).engine
        print(f"fit: {time.perf_counter() - started:.0f} s", flush=True)
        runs: dict[int, dict[str, Any]] = {}
        for per_type in (20, 5):
            out = work / f"engine-{per_type}"
            classify(engine, pool_dir, out, ClassifyConfig(per_type=per_type, seed=SEED,
                                                           show_progress=False))  # fmt: skip
            curve = pool_dir if per_type == 20 else None
            runs[per_type] = line_rates(out, test_dir, work / f"report-{per_type}", curve)
        print(f"classify + evaluate: {time.perf_counter() - started:.0f} s", flush=True)

        extractor = FeatureExtractor(Inspector.open(engine).bundle, show_progress=False)
        pool_set = LabelledSet.load(pool_dir)
        extractor.learn_good(pool_dir, pool_set.of_class("good"))
        pool = extractor.table(pool_dir, [i for i in pool_set.items if i.cls != "good"], "pool")
        test_set = LabelledSet.load(test_dir)
        test = extractor.table(test_dir, [Labelled(i.file, i.cls, i.type)
                                          for i in test_set.items if i.file.startswith("test/")],
                               "test")  # fmt: skip
        threshold = Inspector.open(engine).threshold
        held = hold_out(pool, test, threshold)
        ms = classifier_ms(work / "engine-20", test)
        total = time.perf_counter() - started
        print(f"classifier: {ms:.2f} ms per part; total {total:.0f} s", flush=True)
        v20, v5 = runs[20]["verdicts"], runs[5]["verdicts"]
        curve = runs[20]["learning_curve"]
        at20 = curve["sizes"].index(20)
        comparison = {
            name: {
                "nuisance_pass": lines["nuisance_pass"]["mean"][at20],
                "defect_escape": lines["defect_escape"]["mean"][at20],
            }
            for name, lines in curve["curves"].items()
        }
        unseen = [
            h["rejected_of_flagged"] for h in held.values() if h["rejected_of_flagged"] is not None
        ]
        note = (
            f"{args.count} good training images, {args.epochs} epochs, {args.test} test images "
            f"per type ({len(DEFECT_TYPES)} defect types incl. {len(MIXED_TYPES)} mixed, "
            f"{len(NUISANCE_TYPES)} nuisance types), "
            f"{DEFAULT_FEATURES} features, pass probability {DEFAULT_PASS_PROBABILITY}, OOD "
            f"margin {DEFAULT_OOD_MARGIN}, seed {SEED}"
        )
        merge_results(args.out, [
            entry("classifier_ms_per_part", ms, "ms", note="features + MLP (ONNX Runtime), "
                  "128x128, one anomalous part at a time"),
            entry("nuisance_pass_rate", v20["nuisance_pass_rate"], "fraction",
                  note=f"20 labelled images per type; {note}",
                  per_type={t: m["passed"] for t, m in v20["per_type"].items()
                            if m["class"] == "nuisance"}),
            entry("defect_escape_rate", v20["defect_escape_rate"], "fraction",
                  note="20 labelled images per type, mixed defect+nuisance parts included",
                  per_type={t: m["passed"] for t, m in v20["per_type"].items()
                            if m["class"] == "defect"}),
            entry("good_pass_rate", v20["good_pass_rate"], "fraction"),
            entry("nuisance_pass_rate_5_per_type", v5["nuisance_pass_rate"], "fraction"),
            entry("defect_escape_rate_5_per_type", v5["defect_escape_rate"], "fraction"),
            entry("good_pass_rate_5_per_type", v5["good_pass_rate"], "fraction"),
            entry("unseen_defect_type_rejected_min", min(unseen) if unseen else 0.0, "fraction",
                  note="each defect type left out of training in turn: the least of it rejected "
                  "(of its flagged parts)", per_type=held),
            entry("classifier_feature_sets_at_20_per_type", comparison[DEFAULT_FEATURES][
                "nuisance_pass"], "fraction", note="nuisance pass rate of the default set; "
                  "all sets (learning curve, 3 seeds)", sets=comparison),
        ])  # fmt: skip
        (work / "classifier_bench.json").write_text(
            json.dumps({"runs": {k: v["verdicts"] for k, v in runs.items()}, "curve": curve,
                        "hold_out": held, "ms_per_part": ms, "seconds": total}, indent=2) + "\n"
        )  # fmt: skip


if __name__ == "__main__":
    main()
