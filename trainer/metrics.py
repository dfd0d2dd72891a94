"""Anomaly-detection metrics (numpy only) and the evaluation summary behind metrics.json.

Conventions: label 1 / mask True means anomalous; a higher score means more anomalous; a
sample is predicted anomalous iff ``score >= threshold``. The curve functions follow
scikit-learn's definitions (tied scores form one operating point) so that our figures can be
cross-checked against it in the tests, but scikit-learn is not a runtime dependency.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)

# Positive scores are compared against the sorted negatives in chunks so the int64
# temporaries of searchsorted stay small even for ~20M-pixel evaluations.
_PIXEL_CHUNK = 1 << 20

GOOD = "good"
DEFECT = "defect"
NUISANCE = "nuisance"


# ---------------------------------------------------------------------------------------------
# Image-level curves
# ---------------------------------------------------------------------------------------------


def _as_binary_problem(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.size == 0:
        raise ValueError("no samples")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return y.astype(bool), s


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True/false positives flagged at each distinct score, highest score first."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    # The last index of each run of equal scores: ties enter the curve together.
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted, dtype=np.int64)[last_of_run]
    fps = (last_of_run + 1) - tps
    return fps, tps, s_sorted[last_of_run]


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve as (fpr, tpr, thresholds), one point per distinct score.

    Matches ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``: the first point is
    (0, 0) at threshold +inf, thresholds decrease. Raises ValueError unless both classes occur.
    """
    y, s = _as_binary_problem(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both normal (0) and anomalous (1) samples")
    fps, tps, thresholds = _cumulative_counts(y, s)
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    return fpr, tpr, np.r_[np.inf, thresholds]


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    # Written out so the trainer does not depend on numpy 2's np.trapezoid rename.
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) * 0.5))


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve; ValueError if only one class is present."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return _trapezoid(tpr, fpr)


def aupr(labels: ArrayLike, scores: ArrayLike) -> float:
    """Average precision, as ``sklearn.metrics.average_precision_score``.

    AP = sum_n (R_n - R_{n-1}) P_n over the distinct thresholds (step-wise, no interpolation).
    Raises ValueError when there is no anomalous sample (recall undefined).
    """
    y, s = _as_binary_problem(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("average precision needs at least one anomalous (1) sample")
    fps, tps, _ = _cumulative_counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# ---------------------------------------------------------------------------------------------
# Pixel-level metrics
# ---------------------------------------------------------------------------------------------


def _check_pixel_inputs(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Masks and maps, one pair per image, as flat concatenations plus each image's pixel count.

    Accepts (N, H, W) arrays or sequences of (H_i, W_i) arrays (images of different sizes).
    """
    mask_list = [np.asarray(m).astype(bool, copy=False) for m in masks]
    map_list = [np.asarray(m) for m in maps]
    if len(mask_list) != len(map_list) or not mask_list:
        raise ValueError(f"need one mask per map; got {len(mask_list)} and {len(map_list)}")
    for mask, amap in zip(mask_list, map_list, strict=True):
        if mask.shape != amap.shape or mask.ndim != 2:
            raise ValueError(
                f"a mask and its map must be (H, W) alike; got {mask.shape}, {amap.shape}"
            )
    sizes = [m.size for m in mask_list]
    flat_masks = np.concatenate([m.ravel() for m in mask_list])
    flat_maps = np.concatenate([m.ravel() for m in map_list])
    return flat_masks, flat_maps, sizes


def pixel_auroc(masks: Any, maps: Any) -> float:
    """Pixel-wise AUROC over all images, ties counted half (equal to sklearn's roc_auc_score).

    masks, maps: (N, H, W) arrays, or sequences of (H_i, W_i) arrays. Computed as the
    Mann-Whitney statistic from two sorted copies of the scores rather than from a full argsort,
    so the peak extra memory is about two float copies of the maps.
    """
    flat_masks, flat_maps, _ = _check_pixel_inputs(masks, maps)
    pos = flat_maps[flat_masks]
    neg = flat_maps[~flat_masks]
    if pos.size == 0 or neg.size == 0:
        raise ValueError("pixel AUROC needs both anomalous and normal pixels")
    neg.sort()
    below = 0  # pairs (pos, neg) with neg < pos
    tied = 0  # pairs with neg == pos
    for start in range(0, pos.size, _PIXEL_CHUNK):
        chunk = pos[start : start + _PIXEL_CHUNK]
        left = np.searchsorted(neg, chunk, side="left")
        right = np.searchsorted(neg, chunk, side="right")
        below += int(left.sum())
        tied += int((right - left).sum())
    return (below + 0.5 * tied) / (float(pos.size) * float(neg.size))


def _region_labels(masks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Globally numbered 8-connected GT regions of each (H_i, W_i) mask, flattened and
    concatenated (0 = anomaly-free), and each region's size."""
    parts = []
    next_id = 0
    for mask in masks:
        labels = np.zeros(mask.shape, dtype=np.int32)
        if mask.any():
            n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
            inside = lab > 0
            labels[inside] = lab[inside] + next_id
            next_id += n - 1
        parts.append(labels.ravel())
    regions = np.concatenate(parts)
    sizes = np.bincount(regions, minlength=next_id + 1)
    return regions, sizes


def _pro_curve(
    maps: np.ndarray, regions: np.ndarray, sizes: np.ndarray, fpr_limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, pro) at every distinct threshold down to the first point with fpr >= fpr_limit."""
    n_regions = sizes.size - 1
    free = regions == 0
    n_free = int(sizes[0])
    free_scores = maps[free]
    # Only the pixels at or above the threshold where FPR first reaches the limit matter;
    # dropping the rest keeps the sort small.
    m = min(n_free, max(1, math.ceil(fpr_limit * n_free)))
    free_scores.partition(n_free - m)  # in place: the copy above is the only one
    cut = free_scores[n_free - m]
    del free_scores
    keep = maps >= cut
    s = maps[keep]
    r = regions[keep]
    order = np.argsort(-s, kind="stable")
    s, r = s[order], r[order]
    # Each anomaly-free pixel adds 1/n_free to the FPR; a pixel of region k adds
    # 1 / (|k| * n_regions) to the mean per-region overlap.
    fpr_step = (r == 0) / n_free
    weight = np.zeros(sizes.size, dtype=np.float64)
    weight[1:] = 1.0 / (sizes[1:] * n_regions)
    pro_step = weight[r]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    fpr = np.r_[0.0, np.cumsum(fpr_step)[last_of_run]]
    pro = np.r_[0.0, np.cumsum(pro_step)[last_of_run]]
    return fpr, pro


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under y(x) for x in [0, x_max], interpolating the last segment."""
    inside = int(np.searchsorted(x, x_max, side="right"))
    area = _trapezoid(y[:inside], x[:inside])
    if inside < x.size and x[inside - 1] < x_max:
        x0, x1, y0, y1 = x[inside - 1], x[inside], y[inside - 1], y[inside]
        y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_at) * (x_max - x0)
    return area


def aupro(masks: Any, maps: Any, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region-overlap curve (MVTec AD), in [0, 1].

    masks, maps: (N, H, W) arrays, or sequences of (H_i, W_i) arrays. Regions are the
    8-connected components of each GT mask; PRO at a threshold is the mean
    over all regions of the fraction of the region flagged; the x-axis is the FPR over all
    anomaly-free pixels (good images and outside the masks). The area for FPR in
    [0, fpr_limit] is divided by fpr_limit, so a perfect map scores 1.0 and a random one
    about fpr_limit / 2.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    mask_list = [np.asarray(m).astype(bool, copy=False) for m in masks]
    _, flat_maps, _ = _check_pixel_inputs(mask_list, maps)
    regions, sizes = _region_labels(mask_list)
    if sizes.size < 2:
        raise ValueError("AUPRO needs at least one anomalous region in the masks")
    if sizes[0] == 0:
        raise ValueError("AUPRO needs anomaly-free pixels")
    fpr, pro = _pro_curve(flat_maps, regions, sizes, fpr_limit)
    return _area_up_to(fpr, pro, fpr_limit) / fpr_limit


# ---------------------------------------------------------------------------------------------
# Operating point
# ---------------------------------------------------------------------------------------------


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def confusion_at(labels: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, Any]:
    """Confusion counts and ratios at a threshold (anomalous iff score >= threshold).

    Ratios whose denominator is zero (e.g. precision when nothing is flagged) are None.
    """
    y, s = _as_binary_problem(labels, scores)
    pred = s >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": _ratio(tp + tn, y.size),
    }


def f1_optimal_threshold(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """(threshold, f1) maximising F1 over every cut between distinct scores.

    The threshold is placed midway between the lowest score flagged and the next lower
    score, so no sample sits on it and small score drift does not flip a verdict. Ties in F1
    go to the highest threshold (fewest parts rejected).
    """
    y, s = _as_binary_problem(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0:
        raise ValueError("F1 needs at least one anomalous (1) sample")
    fps, tps, cuts = _cumulative_counts(y, s)
    f1 = 2 * tps / (tps + fps + n_pos)
    best = int(np.argmax(f1))
    lowest_flagged = float(cuts[best])
    if best + 1 < cuts.size:
        highest_kept = float(cuts[best + 1])
        threshold = 0.5 * (lowest_flagged + highest_kept)
        # Adjacent floats: the midpoint rounds onto a sample; stay on the flagged side.
        if threshold <= highest_kept:
            threshold = lowest_flagged
    else:
        threshold = float(np.nextafter(lowest_flagged, -np.inf))
    return threshold, float(f1[best])


# ---------------------------------------------------------------------------------------------
# Evaluation assembly (metrics.json)
# ---------------------------------------------------------------------------------------------


@dataclass
class ImageRecord:
    """One evaluated image: its identity, the model's outputs and what is known to be true."""

    file: str  # path relative to the dataset root
    cls: str  # "good" | "defect" | "nuisance"
    type: str  # "good" or the defect/nuisance type name
    score: float
    anomaly_map: np.ndarray  # float32 (H, W), the model's input resolution
    gt_mask: np.ndarray | None  # bool (H, W), None when the dataset has no mask for it
    image: np.ndarray  # float32 (H, W) or (H, W, 3) BGR in [0, 1], the model's input
    verdict: str = ""  # the engine's verdict (OK | NOK | ERROR); "" when judged by score alone
    reason: str = ""
    defect_class: str | None = None  # the heatmap classifier's class, when it was asked
    class_probability: float | None = None


def _safe(fn: Callable[..., float], *args: Any, what: str, notes: list[str]) -> float | None:
    """Run a metric, turning 'undefined for this data' into None plus a note for the reader."""
    try:
        return float(fn(*args))
    except ValueError as exc:
        notes.append(f"{what}: not computed ({exc})")
        logger.info("%s not computed: %s", what, exc)
        return None


def _image_metrics(
    positives: Sequence[ImageRecord], goods: Sequence[ImageRecord], what: str, notes: list[str]
) -> tuple[float | None, float | None]:
    labels = np.r_[np.ones(len(positives)), np.zeros(len(goods))]
    scores = np.array([r.score for r in [*positives, *goods]], dtype=np.float64)
    return (
        _safe(auroc, labels, scores, what=f"{what} AUROC", notes=notes),
        _safe(aupr, labels, scores, what=f"{what} AUPR", notes=notes),
    )


def _pixel_metrics(
    defects: Sequence[ImageRecord], goods: Sequence[ImageRecord], what: str, notes: list[str]
) -> tuple[float | None, float | None]:
    """Pixel AUROC and AUPRO over defects + goods; None unless every defect has a mask."""
    if not defects:
        notes.append(f"{what} pixel metrics: not computed (no defect images)")
        return None, None
    missing = [r.file for r in defects if r.gt_mask is None]
    if missing:
        names = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        notes.append(
            f"{what} pixel metrics: not computed ({len(missing)} defect image(s) without a "
            f"mask: {names})"
        )
        return None, None
    records = [*defects, *goods]
    if any(r.gt_mask is not None and r.gt_mask.shape != r.anomaly_map.shape for r in records):
        notes.append(f"{what} pixel metrics: not computed (a mask and its map differ in size)")
        return None, None
    maps = [r.anomaly_map for r in records]
    # Good parts have no defect pixels, whether or not the dataset ships an empty mask.
    masks = [
        np.zeros(r.anomaly_map.shape, bool) if r.gt_mask is None else r.gt_mask for r in records
    ]
    return (
        _safe(pixel_auroc, masks, maps, what=f"{what} pixel AUROC", notes=notes),
        _safe(aupro, masks, maps, what=f"{what} AUPRO", notes=notes),
    )


def _flagged_fraction(records: Sequence[ImageRecord], threshold: float) -> float | None:
    if not records:
        return None
    return float(np.mean([r.score >= threshold for r in records]))


def _counts(records: Sequence[ImageRecord]) -> dict[str, Any]:
    by_type: dict[str, dict[str, int]] = {}
    for (cls, typ), n in sorted(Counter((r.cls, r.type) for r in records).items()):
        by_type.setdefault(cls, {})[typ] = n
    by_class = {cls: sum(types.values()) for cls, types in by_type.items()}
    return {"total": len(records), "by_class": by_class, "by_type": by_type}


def _group(records: Sequence[ImageRecord], cls: str) -> dict[str, list[ImageRecord]]:
    groups: dict[str, list[ImageRecord]] = {}
    for r in records:
        if r.cls == cls:
            groups.setdefault(r.type, []).append(r)
    return dict(sorted(groups.items()))


def _per_type(
    defects_by_type: dict[str, list[ImageRecord]],
    goods: list[ImageRecord],
    threshold: float,
    notes: list[str],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for typ, recs in defects_by_type.items():
        img_auroc, img_aupr = _image_metrics(recs, goods, f"{typ} image", notes)
        pix_auroc, pro = _pixel_metrics(recs, goods, typ, notes)
        out[typ] = {
            "count": len(recs),
            "image_auroc": img_auroc,
            "image_aupr": img_aupr,
            "pixel_auroc": pix_auroc,
            "aupro": pro,
            "recall": _flagged_fraction(recs, threshold),
        }
    return out


def _nuisance(
    nuisances_by_type: dict[str, list[ImageRecord]],
    goods: list[ImageRecord],
    threshold: float,
    notes: list[str],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for typ, recs in nuisances_by_type.items():
        auroc_vs_good, _ = _image_metrics(recs, goods, f"nuisance {typ}", notes)
        out[typ] = {
            "count": len(recs),
            "flagged_fraction": _flagged_fraction(recs, threshold),
            "auroc_vs_good": auroc_vs_good,
        }
    return out


def _operating_point(
    defects: list[ImageRecord], goods: list[ImageRecord], threshold: float
) -> dict[str, Any] | None:
    if not defects and not goods:
        return None
    labels = np.r_[np.ones(len(defects)), np.zeros(len(goods))]
    scores = np.array([r.score for r in [*defects, *goods]], dtype=np.float64)
    return confusion_at(labels, scores, threshold)


def _best_f1(
    defects: list[ImageRecord], goods: list[ImageRecord], notes: list[str]
) -> dict[str, float] | None:
    if not defects or not goods:
        notes.append("F1-optimal threshold: not computed (needs defects and good parts)")
        return None
    labels = np.r_[np.ones(len(defects)), np.zeros(len(goods))]
    scores = np.array([r.score for r in [*defects, *goods]], dtype=np.float64)
    threshold, f1 = f1_optimal_threshold(labels, scores)
    return {"threshold": threshold, "f1": f1}


def verdict_summary(records: Sequence[ImageRecord]) -> dict[str, Any]:
    """The engine's verdicts against the truth: per class and per type, how many parts were
    passed (OK), rejected (NOK) or could not be judged (ERROR, rejected too), and the rates a
    quality manager asks for first: good parts passed, nuisances passed, defects passed
    (escaped defects). Rates are None for a class with no images."""

    def tally(group: Sequence[ImageRecord]) -> dict[str, Any]:
        counts = Counter(r.verdict for r in group)
        row: dict[str, Any] = {"count": len(group)}
        row.update({v: counts.get(v, 0) for v in ("OK", "NOK", "ERROR")})
        row["passed"] = _ratio(counts.get("OK", 0), len(group))
        reasons = Counter(r.reason for r in group if r.reason)
        row["reasons"] = dict(sorted(reasons.items()))
        return row

    per_class = {
        cls: tally([r for r in records if r.cls == cls]) for cls in (GOOD, DEFECT, NUISANCE)
    }
    per_type = {}
    for (cls, typ), _ in sorted(Counter((r.cls, r.type) for r in records).items()):
        per_type[typ] = {"class": cls, **tally([r for r in records if r.type == typ])}
    return {
        "per_class": per_class,
        "per_type": per_type,
        "good_pass_rate": per_class[GOOD]["passed"],
        "nuisance_pass_rate": per_class[NUISANCE]["passed"],
        "defect_escape_rate": per_class[DEFECT]["passed"],
    }


def evaluate_records(records: list[ImageRecord], threshold: float) -> dict[str, Any]:
    """Summarise an evaluation run as a JSON-serialisable dict (written as metrics.json).

    Defects are scored against good parts; nuisances (anomalous but acceptable) are reported
    separately and never count as defects. A figure that is undefined for this data (no
    defects, one class only, missing masks) is None, with the reason in ``notes``.
    """
    unknown = {r.cls for r in records} - {GOOD, DEFECT, NUISANCE}
    if unknown:
        raise ValueError(f"unknown record classes {sorted(unknown)}")
    notes: list[str] = []
    goods = [r for r in records if r.cls == GOOD]
    defects = [r for r in records if r.cls == DEFECT]
    image_auroc, image_aupr = _image_metrics(defects, goods, "image", notes)
    pix_auroc, pro = _pixel_metrics(defects, goods, "overall", notes)
    return {
        "threshold": float(threshold),
        "counts": _counts(records),
        "image_auroc": image_auroc,
        "image_aupr": image_aupr,
        "pixel_auroc": pix_auroc,
        "aupro": pro,
        "at_threshold": _operating_point(defects, goods, threshold),
        "f1_optimal": _best_f1(defects, goods, notes),
        "per_type": _per_type(_group(records, DEFECT), goods, threshold, notes),
        "nuisance": _nuisance(_group(records, NUISANCE), goods, threshold, notes),
        "good_false_positive_rate": _flagged_fraction(goods, threshold),
        "verdicts": verdict_summary(records) if all(r.verdict for r in records) else None,
        "notes": notes,
    }
