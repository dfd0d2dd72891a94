"""The decision: a scored part's verdict, in one place, fail-safe.

1. score < threshold → OK.
2. score ≥ threshold and the engine has no classifier → NOK "anomaly".
3. The classifier failed (its backend raised, or it returned something that is not a
   probability) → ERROR "classifier": the part is rejected, never passed.
4. The out-of-distribution guard: the part lies beyond `ood_margin` times the largest score,
   region area, nearest-neighbour distance or envelope excess (how far its furthest feature
   lies outside the range that the labelled nuisances of the kind it fits best spanned in it)
   any labelled nuisance showed (OodGuard in the manifest; the last two leave that nuisance's
   part out; for a part of several regions, its furthest region's) → NOK "ood", class
   "defect": a classifier never passes what it has not learnt.
5. P(nuisance) ≥ pass_probability → OK "nuisance", class "nuisance" (for a part of several
   regions, every region's: edge.stages.classify.part_classification).
6. Otherwise NOK "anomaly", class "defect".

`class_probability` is the classifier's calibrated probability of the class it states
(P(nuisance) for a nuisance, 1 − P(nuisance) for a defect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from edge.manifest import OodGuard

OK, NOK, ERROR = "OK", "NOK", "ERROR"
DefectClass = Literal["defect", "nuisance"]

ANOMALY = "anomaly"
NUISANCE = "nuisance"
OOD = "ood"
CLASSIFIER = "classifier"


@dataclass(frozen=True)
class DecisionPolicy:
    """The numbers a verdict is decided by: the manifest's, or the configuration's overrides.
    pass_probability, guard and ood_margin are None for an engine without a classifier."""

    threshold: float
    pass_probability: float | None = None
    guard: OodGuard | None = None
    ood_margin: float | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):  # NaN or inf would pass every part
            raise ValueError(f"threshold {self.threshold} is not a finite number")
        with_classifier = (self.pass_probability, self.guard, self.ood_margin)
        if any(v is None for v in with_classifier) and any(v is not None for v in with_classifier):
            raise ValueError("pass_probability, guard and ood_margin go together")
        if self.pass_probability is not None and not 0.5 < self.pass_probability <= 1:
            raise ValueError(f"pass_probability {self.pass_probability} is not in (0.5, 1]")
        if self.ood_margin is not None and not 1 <= self.ood_margin < math.inf:
            raise ValueError(f"ood_margin {self.ood_margin} is not a finite number >= 1")


@dataclass(frozen=True)
class Classification:
    """The classifier's answer for one anomalous part: P(nuisance) and how the part compares
    with the labelled nuisances (its score, region area in model pixels, its distance to the
    nearest one and how far its furthest feature lies outside the envelope of the nuisance kind
    it fits best, in their spread, 0 inside: both as the classifier graph computes them)."""

    nuisance_probability: float
    score: float
    area: float
    distance: float
    excess: float


@dataclass(frozen=True)
class ClassifierFailure:
    """The classifier could not judge the part; `why` is a one-line message."""

    why: str


@dataclass(frozen=True)
class Decision:
    verdict: str  # OK | NOK | ERROR
    reason: str  # "" for a plain OK
    defect_class: DefectClass | None = None
    class_probability: float | None = None
    detail: str = ""  # why, for an ERROR


def beyond_nuisances(classification: Classification, guard: OodGuard, margin: float) -> str | None:
    """Which quantity lies beyond `margin` times the labelled nuisances' largest ("score",
    "area", "distance", "envelope"), or None when the part is within their range. A NaN is
    beyond."""
    for name, value, largest in (
        ("score", classification.score, guard.score_max),
        ("area", classification.area, guard.area_max),
        ("distance", classification.distance, guard.distance_max),
        ("envelope", classification.excess, guard.excess_max),
    ):
        if not value <= margin * largest:  # True for NaN
            return name
    return None


def decide(
    score: float,
    policy: DecisionPolicy,
    classification: Classification | ClassifierFailure | None = None,
) -> Decision:
    """The verdict for a scored part (rules in the module docstring). `classification` is
    what the classifier said about a part at or above the threshold (None: not asked)."""
    if score < policy.threshold:
        return Decision(OK, "")
    if policy.pass_probability is None or policy.guard is None or policy.ood_margin is None:
        return Decision(NOK, ANOMALY)
    if classification is None:
        return Decision(ERROR, CLASSIFIER, detail="an anomalous part was not classified")
    if isinstance(classification, ClassifierFailure):
        return Decision(ERROR, CLASSIFIER, detail=classification.why)
    p = classification.nuisance_probability
    if not 0.0 <= p <= 1.0:  # also NaN
        return Decision(ERROR, CLASSIFIER, detail=f"the classifier returned P(nuisance) = {p}")
    defect = 1.0 - p
    if beyond_nuisances(classification, policy.guard, policy.ood_margin) is not None:
        return Decision(NOK, OOD, "defect", defect)
    if p >= policy.pass_probability:
        return Decision(OK, NUISANCE, "nuisance", p)
    return Decision(NOK, ANOMALY, "defect", defect)
