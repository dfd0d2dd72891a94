"""The R-table and the pose hypotheses, both in fixed point.

Voting works in integers only (positions, orientation codes, fixed-point rotations), so the CPU
and the CUDA kernels produce bit-identical accumulators whatever FMA contraction or evaluation
order each compiler picks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.registration.edges import N_ORI

ROT_SHIFT = 14  # scale*cos/sin carried as round(v * 2**14)
DISP_SHIFT = 4  # template displacements carried in 1/16 px
VOTE_SHIFT = ROT_SHIFT + DISP_SHIFT
VOTE_HALF = 1 << (VOTE_SHIFT - 1)  # added before the shift: round half up


@dataclass(frozen=True)
class RTable:
    """Template displacements (edge point -> reference point) grouped by orientation bin.

    Entries of bin ``b`` are ``dx[start[b]:start[b+1]]``, ``dy[...]``: fixed-point displacements
    from the reference point to each template edge point whose gradient orientation is within
    the table's tolerance of bin ``b``. A point near a bin edge is listed in both bins, so an
    orientation error up to the tolerance still finds it.
    """

    start: np.ndarray  # int32 (n_bins + 1,)
    dx: np.ndarray  # int32
    dy: np.ndarray  # int32
    n_points: int

    @property
    def n_bins(self) -> int:
        return int(self.start.size - 1)


@dataclass(frozen=True)
class Hypotheses:
    """The (angle, scale) pairs voted over, flattened; one accumulator slice each."""

    angles_deg: np.ndarray  # float64 (n,)
    scales: np.ndarray  # float64 (n,)
    cos: np.ndarray  # int64 round(scale*cos * 2**ROT_SHIFT)
    sin: np.ndarray  # int64
    ori_shift: np.ndarray  # int32 in [0, N_ORI): template orientation = frame orientation + shift

    def __len__(self) -> int:
        return int(self.angles_deg.size)


def build_rtable(
    dx: np.ndarray, dy: np.ndarray, ori: np.ndarray, n_bins: int, tolerance_deg: float
) -> RTable:
    """R-table of points with displacements ``(dx, dy)`` (px, point minus reference) and
    orientation codes ``ori``."""
    tol = int(round(tolerance_deg / 360.0 * N_ORI))
    per_bin: list[list[int]] = [[] for _ in range(n_bins)]
    for i, q in enumerate(ori.tolist()):
        lo = ((q - tol) * n_bins) // N_ORI
        hi = ((q + tol) * n_bins) // N_ORI
        for b in range(lo, hi + 1):
            per_bin[b % n_bins].append(i)
    start = np.zeros(n_bins + 1, np.int32)
    start[1:] = np.cumsum([len(b) for b in per_bin])
    order = np.array([i for b in per_bin for i in b], dtype=np.int64)
    fx = np.round(np.asarray(dx, np.float64) * (1 << DISP_SHIFT)).astype(np.int32)
    fy = np.round(np.asarray(dy, np.float64) * (1 << DISP_SHIFT)).astype(np.int32)
    if order.size == 0:
        return RTable(start, np.zeros(0, np.int32), np.zeros(0, np.int32), int(ori.size))
    return RTable(start, fx[order].copy(), fy[order].copy(), int(ori.size))


def hypotheses(angles_deg: np.ndarray, scales: np.ndarray) -> Hypotheses:
    """Every (scale, angle) pair, scale-major."""
    a = np.tile(np.asarray(angles_deg, np.float64), len(scales))
    s = np.repeat(np.asarray(scales, np.float64), len(angles_deg))
    rad = np.radians(a)
    one = float(1 << ROT_SHIFT)
    cos = np.round(s * np.cos(rad) * one).astype(np.int64)
    sin = np.round(s * np.sin(rad) * one).astype(np.int64)
    shift = (np.round(a / 360.0 * N_ORI).astype(np.int64) % N_ORI).astype(np.int32)
    return Hypotheses(a, s, cos, sin, shift)


def angle_grid(start_deg: float, stop_deg: float, step_deg: float) -> np.ndarray:
    """Angles from start to stop with at most ``step_deg`` between them; a full turn does not
    repeat its end point."""
    span = stop_deg - start_deg
    if span >= 360.0 - 1e-9:
        n = max(1, math.ceil(360.0 / step_deg))
        return start_deg + np.arange(n) * (360.0 / n)
    n = max(1, math.ceil(span / step_deg)) + 1
    return np.linspace(start_deg, stop_deg, n)
