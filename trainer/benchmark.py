"""`partsight-train benchmark`: the default engine against two plain baselines, on one split.

What a plant engineer runs on their own parts before trusting PartSight with a line (anomalib's
benchmark has the same idea). In one run, on the same images:

- the default engine: `fit` with its defaults on DATA/train/good (its own validation hold-out
  sets its threshold), then `evaluate` on DATA/test exactly as the line would judge it;
- a per-pixel Gaussian and a PCA reconstruction baseline (trainer.baselines), fitted on the same
  training images the engine learnt from, with a threshold set by the same rule on the same
  held-out good images.

It also measures, in the same run, what each threshold rule (trainer.threshold: sigma:3,
quantile:0.99, synthetic) would have given the engine: the rules are applied to the engine's own
held-out good images (and, for `synthetic`, to the same images with synthetic anomalies), then
their false rejects and escapes are counted on the test split.

It writes OUT/benchmark.json (every figure), OUT/benchmark.md (the tables), OUT/report.html (the
table, ROC curves of the three side by side, escape rates per defect type) and a full evaluation
report per method (heatmap overlays of the cases to look at) under OUT/<method>/.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.inspector import Inspector
from trainer.baselines import PcaReconstruction, PerPixelGaussian
from trainer.dataset import Dataset, Item
from trainer.evaluate import evaluate
from trainer.fit import FitConfig, FitResult, fit, with_synthetic_anomalies
from trainer.metrics import ImageRecord, evaluate_records
from trainer.progress import progress_bar
from trainer.report import write_benchmark_report, write_report
from trainer.threshold import threshold_from_good

RULES = ("sigma:3", "quantile:0.99", "synthetic")

log = logging.getLogger(__name__)

ENGINE = "partsight"


@dataclass(frozen=True)
class MethodResult:
    """One method's figures on the test split; rates at the method's own threshold."""

    name: str
    metrics: dict[str, Any]  # trainer.metrics.evaluate_records
    fit_seconds: float
    inference_ms: float  # per test image, reading the file included
    records: list[ImageRecord] = field(repr=False, default_factory=list)

    def row(self) -> dict[str, Any]:
        m = self.metrics
        at = m.get("at_threshold") or {}
        recall = at.get("recall")
        return {
            "method": self.name,
            "image_auroc": m["image_auroc"],
            "image_aupr": m["image_aupr"],
            "pixel_auroc": m["pixel_auroc"],
            "aupro": m["aupro"],
            "threshold": m["threshold"],
            "false_reject_rate": m["good_false_positive_rate"],
            "escape_rate": None if recall is None else 1.0 - recall,
            "escape_rate_per_type": {
                t: (None if v["recall"] is None else 1.0 - v["recall"])
                for t, v in m["per_type"].items()
            },
            "fit_s": self.fit_seconds,
            "inference_ms": self.inference_ms,
        }


def benchmark(
    data: Path, out: Path, config: FitConfig | None = None, show_progress: bool = True
) -> list[MethodResult]:
    """Run the engine and both baselines on `data` (MVTec layout with a test split); write the
    results under `out`. Returns [engine, per-pixel Gaussian, PCA]. Raises DatasetError for a
    dataset without test images, TrainerError if the engine cannot be trained."""
    dataset = Dataset.load(data, need_test=True)
    out.mkdir(parents=True, exist_ok=True)
    config = config or FitConfig(name="benchmark", show_progress=show_progress)
    engine, fitted = _engine(data, dataset, out, config, show_progress)
    results = [engine]
    by_file = {item.file: item for item in dataset.train}
    train = [by_file[f] for f in fitted.train_files]
    val = [by_file[f] for f in fitted.val_files]
    for model in (PerPixelGaussian(), PcaReconstruction()):
        results.append(_baseline(model, dataset, train, val, config, out, show_progress))
    rules = rule_study(fitted, dataset, val, engine.records)
    _write(out, data, results, rules)
    return results


def _engine(
    data: Path, dataset: Dataset, out: Path, config: FitConfig, show_progress: bool
) -> tuple[MethodResult, FitResult]:
    started = time.perf_counter()
    fitted = fit(data, out / ENGINE / "engine", config)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = evaluate(fitted.engine, data, out / ENGINE, show_progress=show_progress)
    per_image = (time.perf_counter() - started) * 1e3 / max(1, len(dataset.test))
    result = MethodResult(ENGINE, evaluation.metrics, fit_seconds, per_image, evaluation.records)
    return result, fitted


def rule_study(
    fitted: FitResult, dataset: Dataset, val: Sequence[Item], test: Sequence[ImageRecord]
) -> list[dict[str, Any]]:
    """What each threshold rule in RULES gives the engine: its threshold from the held-out good
    images `val` (scored by the engine as the line would), and the false-reject and escape rates
    that threshold has on the test records."""
    inspector = Inspector.open(fitted.engine)
    judged = [inspector.inspect(dataset.read(item), item.file) for item in val]
    kept = [j for j in judged if j.score is not None and j.model_input is not None]
    good = np.array([j.score for j in kept], dtype=np.float64)
    inputs = np.stack([j.model_input for j in kept if j.model_input is not None])
    synthetic = inspector.backend.run(with_synthetic_anomalies(inputs, seed=1)).score
    goods = [r.score for r in test if r.cls == "good"]
    defects: dict[str, list[float]] = {}
    for r in test:
        if r.cls == "defect":
            defects.setdefault(r.type, []).append(r.score)
    rows = []
    for rule in RULES:
        threshold, how = threshold_from_good(good, rule, synthetic)
        every = [s for scores in defects.values() for s in scores]
        rows.append(
            {
                "rule": rule,
                "threshold": threshold,
                "how": how,
                "false_reject_rate": float(np.mean(np.array(goods) >= threshold)),
                "escape_rate": float(np.mean(np.array(every) < threshold)) if every else None,
                "escape_rate_per_type": {
                    t: float(np.mean(np.array(s) < threshold)) for t, s in sorted(defects.items())
                },
            }
        )
    return rows


def _baseline(
    model: PerPixelGaussian | PcaReconstruction,
    dataset: Dataset,
    train: Sequence[Item],
    val: Sequence[Item],
    config: FitConfig,
    out: Path,
    show_progress: bool,
) -> MethodResult:
    started = time.perf_counter()
    model.fit([dataset.read(item) for item in train])
    val_scores = np.array([model.score(dataset.read(item)).score for item in val])
    threshold, _ = threshold_from_good(val_scores, config.threshold_rule)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    records = _baseline_records(model, dataset, dataset.test, show_progress)
    per_image = (time.perf_counter() - started) * 1e3 / max(1, len(records))
    metrics = evaluate_records(records, threshold)
    folder = out / _slug(model.name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_report(folder, metrics, records, title=f"Baseline: {model.name}")
    return MethodResult(model.name, metrics, fit_seconds, per_image, records)


def _baseline_records(
    model: PerPixelGaussian | PcaReconstruction,
    dataset: Dataset,
    items: Sequence[Item],
    show_progress: bool,
) -> list[ImageRecord]:
    bar = progress_bar(len(items), f"baseline {model.name}", "image", enabled=show_progress)
    records = []
    for item in items:
        image = dataset.read(item)
        scored = model.score(image)
        shown = image.astype(np.float32) / (255.0 if image.dtype == np.uint8 else 65535.0)
        records.append(
            ImageRecord(
                file=item.file,
                cls=item.cls,
                type=item.type,
                score=scored.score,
                anomaly_map=scored.anomaly_map,
                gt_mask=dataset.read_mask(item),
                image=shown,
            )
        )
        bar.update(1)
    bar.close()
    return records


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if percent else f"{value:.3f}"


def table_markdown(results: Sequence[MethodResult]) -> str:
    """The benchmark table (one row per method, then escape rates per defect type)."""
    rows = [r.row() for r in results]
    lines = [
        "| method | image AUROC | image AUPR | pixel AUROC | AUPRO | false rejects | escapes "
        "| fit s | ms/image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {_fmt(r['image_auroc'])} | {_fmt(r['image_aupr'])} "
            f"| {_fmt(r['pixel_auroc'])} | {_fmt(r['aupro'])} "
            f"| {_fmt(r['false_reject_rate'], True)} | {_fmt(r['escape_rate'], True)} "
            f"| {r['fit_s']:.0f} | {r['inference_ms']:.1f} |"
        )
    types = sorted({t for r in rows for t in r["escape_rate_per_type"]})
    if types:
        lines += ["", "Defects let through at each method's own threshold, per type:", ""]
        lines.append("| method | " + " | ".join(types) + " |")
        lines.append("|---|" + "---|" * len(types))
        for r in rows:
            cells = [_fmt(r["escape_rate_per_type"].get(t), True) for t in types]
            lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rules_markdown(rules: Sequence[dict[str, Any]]) -> str:
    """The threshold-rule table: each rule's false rejects and escapes on the test split."""
    lines = [
        "| threshold rule | threshold | false rejects | escapes |",
        "|---|---|---|---|",
    ]
    for r in rules:
        lines.append(
            f"| {r['rule']} | {r['threshold']:.4g} | {_fmt(r['false_reject_rate'], True)} "
            f"| {_fmt(r['escape_rate'], True)} |"
        )
    return "\n".join(lines) + "\n"


def _write(
    out: Path, data: Path, results: Sequence[MethodResult], rules: Sequence[dict[str, Any]]
) -> None:
    summary = {
        "dataset": str(data),
        "counts": results[0].metrics["counts"],
        "methods": [r.row() for r in results],
        "threshold_rules": list(rules),
    }
    (out / "benchmark.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = table_markdown(results)
    (out / "benchmark.md").write_text(
        f"# Benchmark on {data}\n\n{table}\nThe engine under each threshold rule:\n\n"
        f"{rules_markdown(rules)}"
    )
    write_benchmark_report(
        out / "report.html",
        [(r.name, r.records, r.row(), f"{_slug(r.name)}/report.html") for r in results],
        title=f"PartSight benchmark — {data}",
    )
