"""Metrics are cross-checked against scikit-learn (test-only) and hand-computed cases."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import ndimage
from sklearn import metrics as skm

from trainer import metrics as m
from trainer.metrics import ImageRecord, evaluate_records


def _random_problem(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]  # both classes always present
    # Rounding to one decimal makes ties frequent, also across classes.
    scores = np.round(rng.normal(size=n) + 0.7 * labels, 1)
    return labels, scores


# --- image-level curves against scikit-learn -------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_roc_auroc_aupr_match_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels, scores = _random_problem(rng, int(rng.integers(2, 300)))
    fpr, tpr, thr = m.roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_array_equal(thr, sk_thr)
    assert m.auroc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores))
    assert m.aupr(labels, scores) == pytest.approx(skm.average_precision_score(labels, scores))


def test_all_scores_tied_gives_chance() -> None:
    labels = np.array([0, 1, 0, 1, 1])
    scores = np.full(5, 0.3)
    assert m.auroc(labels, scores) == pytest.approx(0.5)
    assert m.aupr(labels, scores) == pytest.approx(skm.average_precision_score(labels, scores))
    fpr, tpr, thr = m.roc_curve(labels, scores)
    assert list(fpr) == [0, 1] and list(tpr) == [0, 1] and thr[0] == np.inf


def test_perfect_and_inverted_scores() -> None:
    labels = np.array([0, 0, 1, 1])
    assert m.auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert m.auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert m.aupr(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0


def test_single_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="both"):
        m.auroc(np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match="both"):
        m.roc_curve(np.zeros(4), np.arange(4.0))
    with pytest.raises(ValueError):
        m.aupr(np.zeros(4), np.arange(4.0))
    # Only anomalies: every cut has precision 1, as in scikit-learn.
    assert m.aupr(np.ones(3), [0.1, 0.5, 0.2]) == pytest.approx(1.0)


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="length"):
        m.auroc(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        m.auroc(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError):
        m.auroc(np.array([]), np.array([]))


# --- pixel AUROC -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_pixel_auroc_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = rng.random((6, 32, 40)) < 0.1
    maps = np.round(rng.random(masks.shape) + 0.3 * masks, 2).astype(np.float32)
    expected = skm.roc_auc_score(masks.ravel(), maps.ravel())
    assert m.pixel_auroc(masks, maps) == pytest.approx(expected, abs=1e-12)


def test_pixel_auroc_chunks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    masks = rng.random((3, 20, 20)) < 0.3
    maps = np.round(rng.random(masks.shape), 1)
    whole = m.pixel_auroc(masks, maps)
    monkeypatch.setattr(m, "_PIXEL_CHUNK", 7)  # many partial chunks
    assert m.pixel_auroc(masks, maps) == pytest.approx(whole, abs=1e-12)


def test_pixel_auroc_errors() -> None:
    with pytest.raises(ValueError, match="both"):
        m.pixel_auroc(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match=r"\(H, W\) alike"):
        m.pixel_auroc(np.zeros((4, 4), bool), np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"\(H, W\) alike"):
        m.pixel_auroc(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="one mask per map"):
        m.pixel_auroc([np.zeros((4, 4), bool)], [])


def test_pixel_metrics_on_images_of_different_sizes() -> None:
    """Real datasets mix image sizes: the pixel metrics pool every pixel of every image, so they
    equal the same figures computed on the concatenated pixels."""
    rng = np.random.default_rng(11)
    shapes = [(12, 20), (7, 9), (16, 16)]
    masks = [np.zeros(s, bool) for s in shapes]
    masks[0][2:5, 3:9] = True
    masks[2][10:14, 1:4] = True
    maps = [rng.random(s) + 0.8 * k for s, k in zip(shapes, masks, strict=True)]
    flat_mask = np.concatenate([k.ravel() for k in masks])
    flat_map = np.concatenate([a.ravel() for a in maps])
    assert m.pixel_auroc(masks, maps) == pytest.approx(skm.roc_auc_score(flat_mask, flat_map))
    for limit in (0.05, 0.3):
        assert m.aupro(masks, maps, limit) == pytest.approx(_reference_aupro(masks, maps, limit))


# --- AUPRO -----------------------------------------------------------------------------------


def _reference_aupro(
    masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], fpr_limit: float
) -> float:
    """Slow, direct definition: one pass over the images per threshold (test use only).
    masks, maps: one (H_i, W_i) pair per image."""
    eight = np.ones((3, 3), int)
    regions = []
    for i, mask in enumerate(masks):
        lab, n = ndimage.label(mask, structure=eight)
        regions += [(i, lab == k) for k in range(1, n + 1)]
    n_free = sum(int((~k).sum()) for k in masks)
    points = [(0.0, 0.0)]
    for t in np.unique(np.concatenate([a.ravel() for a in maps]))[::-1]:
        flagged = [a >= t for a in maps]
        fpr = sum(int((f & ~k).sum()) for f, k in zip(flagged, masks, strict=True)) / n_free
        pro = np.mean([flagged[i][r].mean() for i, r in regions])
        points.append((fpr, pro))
    x, y = np.array(points).T
    y_lim = np.interp(fpr_limit, x, y)  # x is non-decreasing; take the curve up to the limit
    keep = x <= fpr_limit
    xs, ys = np.r_[x[keep], fpr_limit], np.r_[y[keep], y_lim]
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2) / fpr_limit)


def _two_regions() -> np.ndarray:
    masks = np.zeros((4, 32, 32), bool)
    masks[1, 4:10, 4:10] = True  # two regions in one image ...
    masks[1, 20:24, 20:30] = True
    masks[2, 10:20, 10:14] = True  # ... and one in another
    return masks


def test_aupro_perfect_map_scores_one() -> None:
    masks = _two_regions()
    rng = np.random.default_rng(0)
    maps = rng.random(masks.shape) * 0.5 + masks  # every defect pixel above every other
    assert m.aupro(masks, maps) == pytest.approx(1.0)
    assert m.aupro(masks, masks.astype(np.float32)) == pytest.approx(1.0)  # binary map


def test_aupro_random_map_is_about_half_the_limit() -> None:
    masks = np.zeros((8, 64, 64), bool)
    for i in range(8):
        masks[i, 8 * i : 8 * i + 12, 10:30] = True
    maps = np.random.default_rng(1).random(masks.shape)
    assert 0.12 < m.aupro(masks, maps, fpr_limit=0.3) < 0.18


def test_aupro_finding_one_of_two_regions_scores_half() -> None:
    masks = np.zeros((2, 32, 32), bool)
    masks[0, 2:8, 2:8] = True
    masks[1, 20:30, 5:25] = True  # found region is much larger: PRO weighs regions equally
    maps = 0.1 + np.random.default_rng(2).random(masks.shape) * 0.5
    maps[0][masks[0]] = 0.0  # missed: colder than any normal pixel
    maps[1][masks[1]] += 1.0  # found: hotter than any normal pixel
    assert m.aupro(masks, maps) == pytest.approx(0.5)


def test_aupro_hand_computed() -> None:
    # Region A = {(0,0), (0,1)}, region B = {(1,3)} (not 8-connected to A); 5 free pixels.
    masks = np.array([[[1, 1, 0, 0], [0, 0, 0, 1]]], bool)
    maps = np.array([[[0.9, 0.5, 0.8, 0.1], [0.2, 0.3, 0.4, 0.7]]])
    # Curve: (0,0) (0,.25) (.2,.25) (.2,.75) (.2,1) (.4,1)
    assert m.aupro(masks, maps, fpr_limit=0.4) == pytest.approx((0.2 * 0.25 + 0.2) / 0.4)
    assert m.aupro(masks, maps, fpr_limit=0.3) == pytest.approx((0.2 * 0.25 + 0.1) / 0.3)
    assert m.aupro(masks, maps, fpr_limit=0.1) == pytest.approx(0.25)
    # A free pixel tied with A's weaker pixel makes a sloped step (.2,.75) -> (.4,1),
    # which the limit 0.3 cuts in the middle (PRO .875 there).
    maps[0, 1, 2] = 0.5
    expected = (0.2 * 0.25 + 0.1 * (0.75 + 0.875) / 2) / 0.3
    assert m.aupro(masks, maps, fpr_limit=0.3) == pytest.approx(expected)


def test_aupro_diagonal_neighbours_are_one_region() -> None:
    masks = np.zeros((1, 6, 6), bool)
    masks[0, 1, 1:3] = True
    masks[0, 2, 3] = True  # touches (1, 2) only diagonally
    maps = np.full(masks.shape, 0.5)
    maps[0][masks[0]] = 0.0
    maps[0, 2, 3] = 1.0  # found: 1 of 3 pixels of one region (4-connectivity would give 1/2)
    assert m.aupro(masks, maps) == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(4))
def test_aupro_matches_direct_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 2:6, 3:9] = True
    masks[0, 10:12, 10:15] = True
    masks[2, 5:9, 5:7] = True
    maps = np.round(rng.random(masks.shape) + 0.4 * masks, 2)  # ties across both kinds
    for limit in (0.05, 0.3, 1.0):
        assert m.aupro(masks, maps, limit) == pytest.approx(_reference_aupro(masks, maps, limit))


def test_aupro_errors() -> None:
    with pytest.raises(ValueError, match="region"):
        m.aupro(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="anomaly-free"):
        m.aupro(np.ones((1, 4, 4), bool), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="fpr_limit"):
        m.aupro(_two_regions(), np.zeros((4, 32, 32)), fpr_limit=0.0)


# --- operating point -------------------------------------------------------------------------


def test_confusion_at() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.2, 0.5, 0.1, 0.3, 0.0])
    c = m.confusion_at(labels, scores, 0.5)  # ">=": both 0.5s are flagged
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (2, 1, 3, 1)
    assert c["precision"] == pytest.approx(2 / 3)
    assert c["recall"] == pytest.approx(2 / 3)
    assert c["f1"] == pytest.approx(skm.f1_score(labels, scores >= 0.5))
    assert c["accuracy"] == pytest.approx(5 / 7)
    json.dumps(c)


def test_confusion_at_undefined_ratios_are_none() -> None:
    c = m.confusion_at(np.array([0, 0]), np.array([0.1, 0.2]), 1.0)
    assert c["precision"] is None and c["recall"] is None and c["f1"] is None
    assert c["accuracy"] == 1.0


def test_f1_optimal_threshold_separable() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.3, 0.4, 0.6, 0.9])
    threshold, f1 = m.f1_optimal_threshold(labels, scores)
    assert f1 == 1.0
    assert 0.4 < threshold < 0.6
    assert threshold == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(10))
def test_f1_optimal_threshold_is_optimal_and_off_samples(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels, scores = _random_problem(rng, 80)
    threshold, f1 = m.f1_optimal_threshold(labels, scores)
    assert threshold not in scores
    assert skm.f1_score(labels, scores >= threshold) == pytest.approx(f1)
    pred = scores[None, :] >= np.unique(scores)[:, None]  # one row per candidate cut
    tp = (pred & (labels == 1)).sum(axis=1)
    best = np.max(2 * tp / (pred.sum(axis=1) + labels.sum()))
    assert f1 == pytest.approx(best)


def test_f1_optimal_threshold_when_everything_is_flagged() -> None:
    threshold, f1 = m.f1_optimal_threshold(np.array([1, 1]), np.array([0.2, 0.5]))
    assert f1 == 1.0 and threshold < 0.2
    with pytest.raises(ValueError):
        m.f1_optimal_threshold(np.array([0, 0]), np.array([0.2, 0.5]))


# --- evaluate_records ------------------------------------------------------------------------

SIZE = 24


def _record(
    cls: str, typ: str, score: float, mask_box: tuple[int, int, int, int] | None, *, mask: bool
) -> ImageRecord:
    """A record whose map is hot exactly inside the box (a perfect localiser)."""
    anomaly_map = np.full((SIZE, SIZE), 0.05, np.float32)
    gt = np.zeros((SIZE, SIZE), bool)
    if mask_box is not None:
        y0, y1, x0, x1 = mask_box
        anomaly_map[y0:y1, x0:x1] = 0.9
        gt[y0:y1, x0:x1] = True
    return ImageRecord(
        file=f"{cls}/{typ}/{score:.2f}.png",
        cls=cls,
        type=typ,
        score=score,
        anomaly_map=anomaly_map,
        gt_mask=gt if mask else None,
        image=np.full((SIZE, SIZE), 0.5, np.float32),
    )


def _dataset() -> list[ImageRecord]:
    box = (4, 10, 4, 12)
    records = [_record("good", "good", s, None, mask=False) for s in (0.1, 0.2, 0.3, 0.6)]
    records += [_record("defect", "scratch", s, box, mask=True) for s in (0.7, 0.8, 0.9)]
    records += [_record("defect", "dent", s, box, mask=True) for s in (0.25, 0.95)]
    records += [_record("nuisance", "dust", s, None, mask=False) for s in (0.45, 0.65)]
    return records


def test_evaluate_records_values() -> None:
    out = evaluate_records(_dataset(), threshold=0.5)
    json.dumps(out, allow_nan=False)  # strict JSON: no NaN, only plain types
    assert out["threshold"] == 0.5
    assert out["counts"] == {
        "total": 11,
        "by_class": {"defect": 5, "good": 4, "nuisance": 2},
        "by_type": {
            "defect": {"dent": 2, "scratch": 3},
            "good": {"good": 4},
            "nuisance": {"dust": 2},
        },
    }
    labels = [1] * 5 + [0] * 4
    scores = [0.7, 0.8, 0.9, 0.25, 0.95, 0.1, 0.2, 0.3, 0.6]
    assert out["image_auroc"] == pytest.approx(skm.roc_auc_score(labels, scores))
    assert out["image_aupr"] == pytest.approx(skm.average_precision_score(labels, scores))
    assert out["pixel_auroc"] == pytest.approx(1.0)
    assert out["aupro"] == pytest.approx(1.0)
    at = out["at_threshold"]
    assert (at["tp"], at["fp"], at["tn"], at["fn"]) == (4, 1, 3, 1)
    assert out["good_false_positive_rate"] == pytest.approx(0.25)
    assert out["per_type"]["scratch"]["image_auroc"] == pytest.approx(1.0)
    assert out["per_type"]["scratch"]["recall"] == 1.0
    assert out["per_type"]["dent"]["recall"] == 0.5
    assert out["per_type"]["dent"]["image_auroc"] == pytest.approx(
        skm.roc_auc_score([1, 1, 0, 0, 0, 0], [0.25, 0.95, 0.1, 0.2, 0.3, 0.6])
    )
    assert out["per_type"]["dent"]["aupro"] == pytest.approx(1.0)
    assert out["nuisance"]["dust"]["flagged_fraction"] == 0.5
    assert out["nuisance"]["dust"]["auroc_vs_good"] == pytest.approx(
        skm.roc_auc_score([1, 1, 0, 0, 0, 0], [0.45, 0.65, 0.1, 0.2, 0.3, 0.6])
    )
    assert out["f1_optimal"]["f1"] == pytest.approx(skm.f1_score(labels, np.array(scores) >= 0.7))
    assert out["notes"] == []


def test_evaluate_records_missing_mask_nulls_pixel_metrics() -> None:
    records = _dataset()
    records.append(_record("defect", "crack", 0.8, (1, 3, 1, 3), mask=False))
    out = evaluate_records(records, threshold=0.5)
    assert out["pixel_auroc"] is None and out["aupro"] is None
    assert out["per_type"]["crack"]["pixel_auroc"] is None
    assert out["per_type"]["scratch"]["aupro"] == pytest.approx(1.0)  # its masks are complete
    # The note names the image without a mask, not just a count.
    assert (
        "overall pixel metrics: not computed (1 defect image(s) without a mask: "
        "defect/crack/0.80.png)" in out["notes"]
    )
    json.dumps(out, allow_nan=False)


def test_evaluate_records_without_defects_or_goods() -> None:
    goods_only = [r for r in _dataset() if r.cls != "defect"]
    out = evaluate_records(goods_only, threshold=0.5)
    assert out["image_auroc"] is None and out["image_aupr"] is None
    assert out["pixel_auroc"] is None and out["aupro"] is None
    assert out["per_type"] == {} and out["f1_optimal"] is None
    assert out["at_threshold"]["recall"] is None
    assert out["nuisance"]["dust"]["auroc_vs_good"] is not None
    json.dumps(out, allow_nan=False)

    defects_only = [r for r in _dataset() if r.cls == "defect"]
    out = evaluate_records(defects_only, threshold=0.5)
    assert out["image_auroc"] is None and out["good_false_positive_rate"] is None
    assert out["image_aupr"] == pytest.approx(1.0)
    json.dumps(out, allow_nan=False)

    out = evaluate_records([], threshold=0.5)
    assert out["counts"]["total"] == 0 and out["at_threshold"] is None
    json.dumps(out, allow_nan=False)


def test_evaluate_records_rejects_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown"):
        evaluate_records([_record("scrap", "x", 0.1, None, mask=False)], threshold=0.5)
