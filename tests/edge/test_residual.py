"""edge.residual on drawn images whose answer is known: the light change is found however
large a defect the part holds, the bend of a region tells an arc from a line, and a map's
regions come strongest first."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.residual import bend, photometric_fit, region_at, regions_at


def test_the_light_change_is_found_despite_a_large_defect() -> None:
    rng = np.random.default_rng(0)
    reconstructed = (0.3 + 0.4 * rng.random((48, 48))).astype(np.float32)
    lum = 1.15 * reconstructed - 0.02 + 0.005 * rng.standard_normal((48, 48)).astype(np.float32)
    lum[10:25, 10:25] = 0.95  # a bright blob over a tenth of the part
    fit = photometric_fit(lum, reconstructed, np.ones((48, 48), bool))
    assert fit.gain == pytest.approx(1.15, abs=0.01)
    assert fit.offset == pytest.approx(-0.02, abs=0.01)


def test_a_flat_reconstruction_gives_no_light_change() -> None:
    fit = photometric_fit(np.full((8, 8), 0.7, np.float32), np.full((8, 8), 0.5, np.float32),
                          np.ones((8, 8), bool))  # fmt: skip
    assert (fit.gain, fit.offset) == (1.0, 0.0)


def test_an_arc_has_a_sagitta_and_a_line_has_none() -> None:
    line = np.zeros((64, 64), np.uint8)
    cv2.line(line, (8, 8), (56, 40), 1, 1)
    arc = np.zeros((64, 64), np.uint8)
    cv2.ellipse(arc, (32, 48), (24, 24), 0, 200, 340, 1, 1)
    weight = np.ones((64, 64), np.float32)
    straight, curved = bend(line > 0, weight), bend(arc > 0, weight)
    assert straight[1] < 0.01
    # A 140° arc of radius 24: chord 45 px, sagitta 24 (1 - cos 70°) = 15.8 px.
    assert curved[1] == pytest.approx(15.8 / 46, rel=0.25)
    assert straight[0] == pytest.approx(np.log1p(np.hypot(48, 32)), rel=0.05)


def test_the_region_is_the_connected_part_holding_the_peak() -> None:
    level_map = np.zeros((16, 16), np.float32)
    level_map[2:4, 2:4] = 5.0
    level_map[10:13, 10:13] = 3.0
    level_map[3, 3] = 6.0
    peak, union, count = region_at(level_map, 2.0)
    assert count == 2 and np.count_nonzero(peak) == 4 and np.count_nonzero(union) == 13
    peak, _, _ = region_at(level_map, 10.0)  # not reached: half the peak, 3
    assert np.count_nonzero(peak) == 4


def test_regions_come_strongest_first_whatever_their_size_or_place() -> None:
    level_map = np.zeros((16, 16), np.float32)
    level_map[1:3, 1:3] = 3.0  # first in raster order, weakest
    level_map[5:12, 5:12] = 4.0  # largest
    level_map[13, 13] = 9.0  # one pixel, strongest
    regions, union = regions_at(level_map, 2.0)
    assert [int(np.count_nonzero(r)) for r in regions] == [1, 49, 4]
    assert np.array_equal(np.logical_or.reduce(regions), union)
    regions, _ = regions_at(np.zeros((4, 4), np.float32), 1.0)  # nothing: the top pixel alone
    assert len(regions) == 1 and np.count_nonzero(regions[0]) == 1
    regions, union = regions_at(level_map, 20.0)  # not reached: the peak's region at half of it
    assert len(regions) == 1 and np.count_nonzero(union) == 1  # the 4s and 3s are not 4.5
