"""How the heatmap classifier's two numbers follow the labels it gets: the classifier retrained
on N labelled images per type (N = 5, 10, 20, 50; several seeds draw several sets), for each
feature set (hu, residual, cnn, both, all), and judged on a test set by the line's own rule
(edge.stages.decide): the fraction of nuisances passed and of defects passed (escaped).

Features are computed once for the labelled pool and the test set (trainer.feature_table);
each point only retrains the MLP, so a whole curve takes seconds to minutes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.heatmap_features import FEATURE_SETS
from edge.manifest import FEATURE_GROUPS, OodGuard
from edge.stages.decide import OK, DecisionPolicy, decide
from trainer.classifier import MlpConfig, TrainedClassifier
from trainer.feature_table import FeatureTable
from trainer.labelled import Labelled, draw_per_type
from trainer.part_training import classify_parts, ood_guard, train_parts

log = logging.getLogger(__name__)

SIZES = (5, 10, 20, 50)
SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Rates:
    nuisance_pass: float | None
    defect_escape: float | None
    good_pass: float | None
    verdicts: tuple[str, ...]  # per test item


def fit(
    pool: FeatureTable, rows: Sequence[int], feature_set: str, config: MlpConfig, margin: float
) -> tuple[TrainedClassifier, OodGuard]:
    """The classifier (and its guard) trained on the pool's images `rows`, as `classify` trains
    it."""
    examples = pool.subset(rows)
    trained = train_parts(examples, feature_set, config).trained
    return trained, ood_guard(examples, trained, margin)


def judge(
    trained: TrainedClassifier,
    guard: OodGuard,
    test: FeatureTable,
    feature_set: str,
    threshold: float,
    pass_probability: float,
) -> Rates:
    """The line's verdict on every test item, and the rates."""
    policy = DecisionPolicy(threshold, pass_probability, guard, guard.margin)
    verdicts = tuple(
        decide(float(score), policy, answer).verdict
        for score, answer in zip(
            test.scores, classify_parts(trained, test, feature_set), strict=True
        )
    )
    return Rates(
        _passed(test.items, verdicts, "nuisance"),
        _passed(test.items, verdicts, "defect"),
        _passed(test.items, verdicts, "good"),
        verdicts,
    )


def _passed(items: Sequence[Labelled], verdicts: Sequence[str], cls: str) -> float | None:
    judged = [v for i, v in zip(items, verdicts, strict=True) if i.cls == cls]
    return sum(v == OK for v in judged) / len(judged) if judged else None


def learning_curve(
    pool: FeatureTable,
    test: FeatureTable,
    threshold: float,
    pass_probability: float,
    margin: float,
    *,
    sizes: Sequence[int] = SIZES,
    seeds: Sequence[int] = SEEDS,
    feature_sets: Sequence[str] = FEATURE_SETS,
    config: MlpConfig | None = None,
) -> dict[str, Any]:
    """{"sizes", "seeds", "test_images", "curves": {feature set: {"nuisance_pass" | "defect_escape"
    | "good_pass": {"mean": [...], "std": [...], "runs": [[per seed] per size]}}}}; sizes the
    pool cannot fill (fewer images of some type) are still drawn, with all it has."""
    base = config or MlpConfig()
    if pool.cnn is None:
        feature_sets = [f for f in feature_sets if "cnn" not in FEATURE_GROUPS[f]]
    curves: dict[str, Any] = {}
    for feature_set in feature_sets:
        runs: dict[str, list[list[float]]] = {"nuisance_pass": [], "defect_escape": [],
                                               "good_pass": []}  # fmt: skip
        for size in sizes:
            per_seed: dict[str, list[float]] = {k: [] for k in runs}
            for seed in seeds:
                mlp = MlpConfig(**{**base.as_dict(), "seed": seed})  # type: ignore[arg-type]
                rows = draw_per_type(pool.items, size, seed)
                trained, guard = fit(pool, rows, feature_set, mlp, margin)
                rates = judge(trained, guard, test, feature_set, threshold, pass_probability)
                per_seed["nuisance_pass"].append(_num(rates.nuisance_pass))
                per_seed["defect_escape"].append(_num(rates.defect_escape))
                per_seed["good_pass"].append(_num(rates.good_pass))
            for key, values in per_seed.items():
                runs[key].append(values)
            log.info("learning curve %s, %d per type: nuisances passed %.3f, defects passed %.3f",
                     feature_set, size, np.mean(per_seed["nuisance_pass"]),
                     np.mean(per_seed["defect_escape"]))  # fmt: skip
        curves[feature_set] = {
            key: {
                "mean": [float(np.nanmean(v)) for v in values],
                "std": [float(np.nanstd(v)) for v in values],
                "runs": values,
            }
            for key, values in runs.items()
        }
    return {
        "sizes": list(sizes),
        "seeds": list(seeds),
        "test_images": len(test.items),
        "pass_probability": pass_probability,
        "ood_margin": margin,
        "curves": curves,
    }


def _num(value: float | None) -> float:
    return float("nan") if value is None else value
