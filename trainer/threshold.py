"""Choosing the OK/NOK threshold on validation scores.

With labelled defects: the F1-optimal cut. With good parts only: `sigma:K` (mean + K·std of the
good scores, default K = 3), `quantile:Q`, or `synthetic` (the F1-optimal cut between the held-out
good images and the same images with a synthetic anomaly pasted in, trainer.synthetic_anomalies),
never less than the mean + FLOOR_MARGIN. Never "the minimum score" (flags everything) nor "the
maximum good score" (one lucky outlier sets it).
"""

from __future__ import annotations

import numpy as np

from trainer.metrics import f1_optimal_threshold

DEFAULT_RULE = "sigma:3"
# The threshold stays at least this fraction of the mean good score above that mean: validation
# scores that barely vary (near-identical training images) would otherwise put it on the good
# parts' own scores, and they would come out NOK.
FLOOR_MARGIN = 0.05


RULE_HELP = "sigma:K (K > 0), quantile:Q (0.5 <= Q < 1) or synthetic"


def parse_rule(rule: str) -> tuple[str, float]:
    """(kind, number) of a rule: ("sigma", K), ("quantile", Q) or ("synthetic", 0). ValueError
    for anything else."""
    if rule == "synthetic":
        return rule, 0.0
    kind, _, value = rule.partition(":")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"threshold rule {rule!r}: expected {RULE_HELP}") from None
    if kind == "sigma" and number > 0:
        return kind, number
    if kind == "quantile" and 0.5 <= number < 1:
        return kind, number
    raise ValueError(f"threshold rule {rule!r}: expected {RULE_HELP}")


def threshold_from_good(
    scores: np.ndarray, rule: str = DEFAULT_RULE, synthetic: np.ndarray | None = None
) -> tuple[float, str]:
    """(threshold, description) from good validation scores (N,) alone, or for the rule
    `synthetic` also the scores of the same images with a synthetic anomaly each (M,)."""
    kind, number = parse_rule(rule)
    if len(scores) < 2:
        raise ValueError("need at least 2 good validation scores to set a threshold")
    if not np.all(np.isfinite(scores)):
        raise ValueError("good validation scores are not all finite numbers")
    mean = float(np.mean(scores))
    if kind == "synthetic":
        if synthetic is None or len(synthetic) == 0:
            raise ValueError("the rule 'synthetic' needs scores of images with synthetic anomalies")
        labels = np.r_[np.zeros(len(scores)), np.ones(len(synthetic))]
        value, f1 = f1_optimal_threshold(labels, np.r_[scores, synthetic])
        how = (
            f"F1-optimal (F1 {f1:.3f}) between {len(scores)} good validation images and "
            f"{len(synthetic)} with a synthetic anomaly"
        )
    elif kind == "sigma":
        value = mean + number * float(np.std(scores, ddof=1))
        how = f"mean + {number:g} std of {len(scores)} good validation scores"
    else:
        value = float(np.quantile(scores, number))
        how = f"{number:g} quantile of {len(scores)} good validation scores"
    floor = mean + max(FLOOR_MARGIN * abs(mean), 1e-6)
    if value < floor:
        return floor, f"{how}, raised to the floor mean + {FLOOR_MARGIN:.0%} (scores barely vary)"
    return value, how


def threshold_from_labels(good: np.ndarray, defect: np.ndarray) -> tuple[float, str]:
    """(threshold, description): the F1-optimal cut between labelled good and defective parts."""
    labels = np.r_[np.zeros(len(good)), np.ones(len(defect))]
    value, f1 = f1_optimal_threshold(labels, np.r_[good, defect])
    return float(value), f"F1-optimal (F1 {f1:.3f}) on {len(good)} good / {len(defect)} defective"
