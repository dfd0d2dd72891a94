"""The heatmap classifier's features (edge.heatmap_features) on small drawn maps and images whose
answer is known: a line is elongated, a disc solid, a dark pit departs downwards and bright dust
upwards, a frame lit 20 % brighter shows as a brightness shift that the corrected departure
undoes; on the corrected residual, a light change leaves nothing, a pit with a lit rim differs
from a speck without one, an arc bends where a straight line does not, a line over a hole lies on
the dark phase, and each region gets a row of its own."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import edge.heatmap_features
from edge.errors import BundleError
from edge.heatmap_features import (
    HU_COUNT,
    RESIDUAL_COUNT,
    GoodReference,
    PartView,
    anomalous_region,
    feature_count,
    features,
    signed_log10,
)
from edge.residual import regions_at, residual_maps, sharp_regions

SIZE = 64
# Positions in the hu vector (module docstring order): 14 Hu values, then these.
AREA, PEAK, MEAN, ELONGATION, SOLIDITY = 14, 15, 16, 17, 18
RAW_DEPARTURE, DEPARTURE, LOWEST, HIGHEST = 19, 20, 21, 22
SHIFT, CONTRAST, SHARE, REGIONS, SCORE = 23, 24, 25, 26, 27
# Positions in the residual vector.
GAIN, BROAD_PEAK, REGION_COUNT = 0, 2, 3  # the part's, on every row
FINE_PEAK, Z_MEAN, Z_LOWEST, Z_HIGHEST = 7, 11, 12, 13  # the region's
DARK_PHASE, SAGITTA = 22, 25


def part(level: float = 0.5) -> np.ndarray:
    """A good part as the DAE reconstructs it: (SIZE, SIZE) at `level`, a dark hole at the
    left (the foreground's dark phase)."""
    image = np.full((SIZE, SIZE), level, np.float32)
    cv2.circle(image, (12, 32), 6, 0.1, -1)
    return image


def reference(level: float = 0.5, activations: bool = False) -> GoodReference:
    rng = np.random.default_rng(0)
    clean = np.broadcast_to(part(level), (32, 1, SIZE, SIZE))
    good = clean + 0.01 * rng.standard_normal((32, 1, SIZE, SIZE)).astype(np.float32)
    act = (
        rng.standard_normal((32, 4, SIZE // 4, SIZE // 4)).astype(np.float32)
        if activations
        else None
    )
    return GoodReference.from_good(good.astype(np.float32), np.array(clean), None, act)


def view(amap: np.ndarray, image: np.ndarray, activation: np.ndarray | None = None) -> PartView:
    noise = 0.01 * np.random.default_rng(1).standard_normal(image.shape).astype(np.float32)
    return PartView(
        amap, (image + noise)[None], part()[None], activation, score=2.0, threshold=1.0,
        pixel_threshold=1.0,
    )  # fmt: skip


def one_row(feature_set: str, part_view: PartView, ref: GoodReference) -> np.ndarray:
    """The features of a set without the residual group: one row for the part."""
    rows, _ = features(feature_set, part_view, ref)
    assert rows.shape == (1, feature_count(feature_set, 4))
    return rows[0]


def blob_map(draw: str) -> np.ndarray:
    amap = np.zeros((SIZE, SIZE), np.float32)
    if draw == "line":
        cv2.line(amap, (10, 30), (50, 34), 3.0, 2)
    elif draw == "disc":
        cv2.circle(amap, (32, 32), 6, 3.0, -1)
    elif draw == "arc":
        cv2.ellipse(amap, (32, 32), (20, 20), 0, 0, 180, 3.0, 2)
    return amap


def test_signed_log_keeps_the_sign_and_maps_tiny_values_to_zero() -> None:
    np.testing.assert_allclose(signed_log10(np.array([1e-3, -1e-3, 1e-15, 0.0])), [9, -9, 0, 0])


def test_a_line_is_elongated_and_a_disc_is_not() -> None:
    image = part()
    line = one_row("hu", view(blob_map("line"), image), reference())
    disc = one_row("hu", view(blob_map("disc"), image), reference())
    assert line[ELONGATION] > 2.0 and disc[ELONGATION] < 0.1
    assert line.shape == disc.shape == (HU_COUNT,)
    assert disc[AREA] == pytest.approx(np.log1p(np.count_nonzero(blob_map("disc"))))


def test_a_curved_fibre_is_less_solid_than_a_disc() -> None:
    image = part()
    arc = one_row("hu", view(blob_map("arc"), image), reference())
    disc = one_row("hu", view(blob_map("disc"), image), reference())
    assert arc[SOLIDITY] < 0.35 < 0.85 < disc[SOLIDITY]


def test_a_dark_pit_departs_downwards_and_bright_dust_upwards() -> None:
    amap = blob_map("disc")
    dark = part()
    cv2.circle(dark, (32, 32), 5, 0.2, -1)
    bright = part()
    cv2.circle(bright, (32, 32), 5, 0.8, -1)
    pit = one_row("hu", view(amap, dark), reference())
    dust = one_row("hu", view(amap, bright), reference())
    assert pit[DEPARTURE] < -2 and pit[LOWEST] < -3
    assert dust[DEPARTURE] > 2 and dust[HIGHEST] > 3
    assert abs(pit[SHIFT]) < 0.01 and abs(dust[SHIFT]) < 0.01  # the rest of the part is as usual


def test_a_brighter_frame_is_a_shift_that_the_corrected_departure_undoes() -> None:
    amap = np.full((SIZE, SIZE), 2.0, np.float32)  # the whole part lights up on the map
    brighter = 1.2 * part()  # 20 % brighter than the good part
    lit = one_row("hu", view(amap, brighter), reference())
    _, region = features("hu", view(amap, brighter), reference())
    assert region.area == SIZE * SIZE
    assert lit[SHIFT] == pytest.approx(0.1, abs=0.01)
    assert lit[RAW_DEPARTURE] > 2  # against the good mean: far brighter
    assert abs(lit[DEPARTURE]) < 0.5  # against the fitted change: nothing left


def test_the_region_falls_back_to_half_the_peak_when_nothing_reaches_the_pixel_threshold() -> None:
    amap = 0.1 * blob_map("disc")  # peak 0.3 < pixel threshold 1.0
    region = anomalous_region(amap, pixel_threshold=1.0)
    assert region.level == pytest.approx(0.15)
    assert region.area == np.count_nonzero(amap)
    empty = anomalous_region(np.zeros((SIZE, SIZE), np.float32), 1.0)
    assert empty.area == 1  # at least the peak pixel


def test_cnn_features_pool_the_activations_over_the_region() -> None:
    ref = reference(activations=True)
    assert ref.activation_mean is not None and ref.activation_std is not None
    act = ref.activation_mean.copy()
    act[2, 8, 8] += 5 * ref.activation_std[2, 8, 8]  # channel 2 departs where the disc lies
    image = part()
    vector = one_row("cnn", view(blob_map("disc"), image, act), ref)
    assert vector.shape == (feature_count("cnn", 4),) == (8,)
    assert np.argmax(vector[:4]) == 2 and vector[2] > 0
    both = one_row("both", view(blob_map("disc"), image, act), ref)
    assert both.shape == (feature_count("both", 4),) == (HU_COUNT + 8,)
    every, _ = features("all", view(blob_map("disc"), image, act), ref)
    assert every.shape[1] == HU_COUNT + RESIDUAL_COUNT + 8
    for row in every:  # the part-wide groups on every region's row
        np.testing.assert_array_equal(row[HU_COUNT + RESIDUAL_COUNT :], vector)
        np.testing.assert_array_equal(row[:HU_COUNT], both[:HU_COUNT])
    with pytest.raises(ValueError, match="encoder's activations"):
        features("cnn", view(blob_map("disc"), image, None), ref)


def test_the_reference_round_trips_and_refuses_another_size(tmp_path: Path) -> None:
    ref = reference(activations=True)
    ref.save(tmp_path / "reference.npz")
    back = GoodReference.load(tmp_path / "reference.npz", (SIZE, SIZE))
    np.testing.assert_array_equal(back.mean, ref.mean)
    assert back.activation_std is not None and back.activation_std.shape == (4, 16, 16)
    with pytest.raises(BundleError, match=r"feature reference is \(64, 64\), the maps are"):
        GoodReference.load(tmp_path / "reference.npz", (32, 32))


def residual_rows(image: np.ndarray) -> np.ndarray:
    rows, _ = features("residual", view(blob_map("disc"), image), reference())
    assert rows.ndim == 2 and rows.shape[1] == RESIDUAL_COUNT
    return rows


def residual(image: np.ndarray) -> np.ndarray:
    """The strongest region's row."""
    return residual_rows(image)[0]


def test_a_light_change_leaves_nothing_in_the_corrected_residual_and_a_pit_under_it_stays() -> None:
    lit = residual(1.2 * part())
    assert lit[GAIN] == pytest.approx(0.2, abs=0.02)
    assert lit[FINE_PEAK] < np.log(3.0) and lit[BROAD_PEAK] < np.log(3.0)  # as good parts
    pitted = part()
    cv2.circle(pitted, (40, 32), 3, 0.2, -1)
    both = residual(1.2 * pitted)
    assert both[GAIN] == pytest.approx(0.2, abs=0.02)  # the pit does not drag the fit
    assert both[FINE_PEAK] > np.log(100.0)  # far beyond any good part
    assert both[Z_LOWEST] < -3  # dark


def test_a_pit_with_a_lit_rim_differs_from_a_speck_without_one() -> None:
    speck = part()
    cv2.circle(speck, (40, 32), 4, 0.3, -1)
    dent = speck.copy()
    cv2.ellipse(dent, (40, 32), (6, 6), 0, 180, 360, 0.8, 2)  # the rim's side facing the lamp
    plain, rimmed = residual(speck), residual(dent)
    assert plain[Z_LOWEST] < -3 and rimmed[Z_LOWEST] < -3
    assert rimmed[Z_HIGHEST] > 3 > plain[Z_HIGHEST]  # the lit rim is part of the dent's region


def test_an_arc_bends_and_a_straight_line_does_not() -> None:
    straight = part()
    cv2.line(straight, (24, 20), (56, 44), 0.85, 1)
    arc = part()
    cv2.ellipse(arc, (40, 50), (22, 22), 0, 210, 330, 0.85, 1)  # sagitta ~3 px over ~38 px
    assert residual(straight)[SAGITTA] < 0.03 < 0.06 < residual(arc)[SAGITTA]


def test_a_fibre_over_the_hole_lies_on_the_dark_phase_and_one_on_the_metal_does_not() -> None:
    over = part()
    cv2.line(over, (4, 32), (30, 32), 0.9, 1)  # crosses the hole at x 6..18
    metal = part()
    cv2.line(metal, (32, 20), (58, 20), 0.9, 1)
    assert residual(over)[DARK_PHASE] > 0.1
    assert residual(metal)[DARK_PHASE] == 0.0


def test_residual_features_need_the_reconstruction() -> None:
    bare = PartView(blob_map("disc"), part()[None], None, None, 2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="reconstruction"):
        features("residual", bare, reference())
    assert one_row("hu", bare, reference()).shape == (HU_COUNT,)  # the map alone: no need


def test_each_sharp_region_gets_its_own_row_strongest_first() -> None:
    """A bright fibre beside a faint dark pit: the fibre's row first, then the pit's (weaker
    rows may follow: the faint rim of opposite sign the sharp residual leaves around each); the
    part's columns are the same on every row (a defect beside a nuisance must not hide behind
    the stronger one)."""
    image = part()
    cv2.line(image, (26, 14), (56, 20), 0.95, 1)
    cv2.circle(image, (40, 48), 3, 0.35, -1)
    rows = residual_rows(image)
    fibre, pit, *rims = rows
    assert fibre[FINE_PEAK] > pit[FINE_PEAK] > np.log(10.0)
    assert all(rim[FINE_PEAK] < pit[FINE_PEAK] - 1.0 for rim in rims)
    for row in rows:
        np.testing.assert_array_equal(row[:FINE_PEAK], fibre[:FINE_PEAK])
    assert fibre[REGION_COUNT] == pytest.approx(np.log1p(len(rows)))
    assert fibre[Z_MEAN] > 0 and fibre[Z_HIGHEST] > 3  # bright
    assert pit[Z_MEAN] < 0 and pit[Z_LOWEST] < -3  # dark
    assert fibre[SAGITTA] < 0.03  # each row's own line: the fibre's is straight


def test_a_faint_dent_whose_halves_stay_below_the_level_is_still_judged_beside_a_speck() -> None:
    """The dark floor and the lit rim of a faint dent each stay below the level their sum passes:
    the dent is a region of its own (on the fine map), not lost behind a bright speck."""
    image = part()
    cv2.circle(image, (40, 40), 3, 0.485, -1)  # the floor
    cv2.circle(image, (40, 40), 5, 0.515, 1)  # the rim
    cv2.circle(image, (30, 12), 2, 0.9, -1)  # a bright speck, far stronger
    ref = reference()
    seen = view(blob_map("disc"), image)
    maps = residual_maps(seen.image, part()[None], ref.foreground, ref.residual_spread)
    dent = (slice(35, 46), slice(35, 46))
    assert max(maps.bright[dent].max(), maps.dark[dent].max()) < ref.fine_level
    assert maps.fine[dent].max() >= ref.fine_level
    regions, _ = sharp_regions(maps, ref.fine_level)
    assert regions[0].mask[12, 30]  # the speck first
    on_dent = [r for r in regions if r.mask[dent].any()]
    assert len(on_dent) == 1 and on_dent[0].level_map is not maps.bright
    assert len(residual_rows(image)) == len(regions)


def test_a_part_with_nothing_sharp_has_one_row_its_strongest_spot() -> None:
    """A part flagged for something broad (a stain) still gets a row: the fine map's strongest
    spot, whatever the level."""
    stained = part() + 0.03 * np.exp(-((np.arange(SIZE) - 40.0) ** 2) / 200.0)[None, :]
    assert len(residual_rows(stained.astype(np.float32))) == 1


def test_a_bright_fibre_across_a_dark_scratch_is_two_regions_not_one() -> None:
    image = part()
    cv2.line(image, (20, 20), (56, 44), 0.25, 1)  # the scratch
    cv2.line(image, (20, 44), (56, 20), 0.8, 1)  # the fibre across it
    first, second, *_ = residual_rows(image)
    assert min(first[FINE_PEAK], second[FINE_PEAK]) > np.log(10.0)
    assert {bool(first[Z_MEAN] > 0), bool(second[Z_MEAN] > 0)} == {True, False}
    ref = reference()
    crossing = view(blob_map("disc"), image)
    maps = residual_maps(crossing.image, part()[None], ref.foreground, ref.residual_spread)
    strong = [r for r in regions_at(maps.fine, ref.fine_level)[0] if maps.fine[r].max() > 100]
    assert len(strong) == 1  # the fine map alone merges the two


def test_a_part_with_more_regions_than_the_classifier_judges_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = part()
    for x, y in ((30, 12), (54, 12), (30, 52), (54, 52)):  # four specks far apart
        cv2.circle(image, (x, y), 2, 0.3, -1)
    count = len(residual_rows(image))
    assert count >= 4
    monkeypatch.setattr(edge.heatmap_features, "MAX_REGIONS", count - 1)
    with pytest.raises(
        ValueError, match=f"{count} separate anomalous regions, more than the {count - 1}"
    ):
        residual_rows(image)
