"""The heatmap classifier judges regions; a technician labels parts. Training from part labels
(multiple-instance learning: a part is a bag of regions, Dietterich, Lathrop & Lozano-Pérez
1997) and judging parts the way the line does.

A nuisance part's regions are all nuisances: each is an example of the part's kind. A defect
part has at least one defect region and may have a dust speck or a fibre beside it, so only one
of its regions is an example. A defect part of one region is that example. For one of several,
a first classifier, trained on the nuisances and the one-region defects, picks the region it
finds most defect-like (the lowest P(nuisance)), and the classifier is trained again with those
picks (one step of MI-SVM's alternation; Andrews, Tsochantaridis & Hofmann 2003, "Support
vector machines for multiple-instance learning"). Starting from the strongest region instead
would teach a defect kind the dust speck beside it, and the next round would pick that speck
again; it is the start only when fewer than two defect parts have a single region. The regions
of one part are one group for the classifier's folds and references (trainer.classifier). A
part is judged by its most defect-like region (edge.stages.classify.part_classification), on
the line and here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edge.manifest import OodGuard
from edge.stages.classify import part_classification
from edge.stages.decide import Classification, ClassifierFailure
from trainer.classifier import MlpConfig, TrainedClassifier, train_classifier
from trainer.feature_table import TOO_MANY_REGIONS, FeatureTable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartClassifier:
    """A classifier trained from part labels, and the rows of ``table.vectors(feature_set)`` it
    learnt from (every region of a nuisance part, one of a defect part)."""

    trained: TrainedClassifier
    rows: np.ndarray  # (E,) intp, increasing

    def held_out(self, table: FeatureTable, feature_set: str) -> np.ndarray:
        """(N,) each part's cross-validated P(nuisance): the lowest over its training rows (a
        defect part has one); NaN for a part it did not learn from (more regions than the line
        judges), which counts as passed nowhere."""
        owner = table.owners(feature_set)[self.rows]
        out = np.full(len(table.items), np.inf)
        np.minimum.at(out, owner, self.trained.held_out)
        out[np.isinf(out)] = np.nan
        return out


def train_parts(table: FeatureTable, feature_set: str, config: MlpConfig) -> PartClassifier:
    """Train on every labelled part of `table` (module docstring); TrainerError (from
    train_classifier) when a class has fewer than 2 examples."""
    x = table.vectors(feature_set)
    owner = table.owners(feature_set)
    nuisance = table.is_nuisance
    regions = np.bincount(owner, minlength=len(table.items))
    nuisance_rows = np.flatnonzero(nuisance[owner])
    plain = np.flatnonzero(~nuisance[owner] & (regions[owner] == 1))
    several = np.flatnonzero(~nuisance & (regions > 1))
    # First the unambiguous defects (one region each); the strongest regions of the others
    # when there are too few of those to learn from.
    first = np.r_[True, owner[1:] != owner[:-1]]
    start = plain if len(plain) >= 2 else np.flatnonzero(~nuisance[owner] & first)
    start_rows = np.sort(np.r_[nuisance_rows, start])
    trained = _train(table, x, owner, start_rows, config)
    if len(several) == 0:
        return PartClassifier(trained, start_rows)
    candidates = np.flatnonzero(np.isin(owner, several))  # the regions of those parts
    p = trained.predict(x[candidates]).probability
    picks = [
        int(candidates[mine][np.argmin(p[mine])])  # ties: the strongest
        for mine in (owner[candidates] == part for part in several)
    ]
    chosen = np.sort(np.r_[nuisance_rows, plain, picks])
    moved = int(np.count_nonzero(~first[picks]))
    log.info("classifier: %d of %d defect parts with several regions taught by another than "
             "their strongest", moved, len(several))  # fmt: skip
    trained = _train(table, x, owner, chosen, config)
    return PartClassifier(trained, chosen)


def ood_guard(table: FeatureTable, trained: TrainedClassifier, margin: float) -> OodGuard:
    """The out-of-distribution guard of a classifier trained on `table`'s parts: the highest
    score and largest region of its nuisance parts, the classifier's own distance and excess
    references, and `margin`."""
    nuisance = table.is_nuisance
    return OodGuard(
        score_max=float(table.scores[nuisance].max()),
        area_max=float(table.areas[nuisance].max()),
        distance_max=trained.distance_max,
        excess_max=trained.excess_max,
        margin=margin,
    )


def _train(
    table: FeatureTable, x: np.ndarray, owner: np.ndarray, rows: np.ndarray, config: MlpConfig
) -> TrainedClassifier:
    parts = owner[rows]
    types = [table.items[i].type for i in parts]
    return train_classifier(x[rows], table.is_nuisance[parts], config, types, groups=parts)


def classify_parts(
    trained: TrainedClassifier, table: FeatureTable, feature_set: str
) -> list[Classification | ClassifierFailure]:
    """Each part's Classification, as the line computes it from its regions' (torch graph); a
    ClassifierFailure for a part with more regions than the line judges (it has no rows)."""
    owner = table.owners(feature_set)
    got = trained.predict(table.vectors(feature_set))
    out: list[Classification | ClassifierFailure] = []
    for part in range(len(table.items)):
        mine = owner == part
        if not mine.any():
            out.append(ClassifierFailure(TOO_MANY_REGIONS))
            continue
        out.append(
            part_classification(
                got.probability[mine], got.distance[mine], got.excess[mine],
                float(table.scores[part]), float(table.areas[part]),
            )
        )  # fmt: skip
    return out
