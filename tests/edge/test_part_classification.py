"""A part is as defect-like as its most defect-like region (edge.stages.classify)."""

from __future__ import annotations

import math

import numpy as np

from edge.stages.classify import part_classification


def test_the_part_takes_the_lowest_probability_and_the_largest_distance_and_excess() -> None:
    got = part_classification(
        np.array([0.99, 0.2, 0.95]), np.array([0.1, 0.3, 2.0]), np.array([0.0, 1.5, 0.2]),
        score=3.0, area=40.0,
    )  # fmt: skip
    assert (got.nuisance_probability, got.distance, got.excess) == (0.2, 2.0, 1.5)
    assert (got.score, got.area) == (3.0, 40.0)


def test_a_nan_in_any_region_stays_a_nan() -> None:
    got = part_classification(
        np.array([0.99, np.nan]), np.array([0.1, 0.2]), np.array([np.nan, 0.0]), 3.0, 40.0
    )
    assert math.isnan(got.nuisance_probability) and math.isnan(got.excess)
    assert got.distance == 0.2
