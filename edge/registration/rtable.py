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
    orientation error up to the tolerance still finds it. Within a bin, entries are sorted by
    their length (px); ``ring[b, r]`` is the first entry of bin ``b`` at least ``r`` px long, so
    a vote into a small window skips, in O(1), the entries that cannot reach it (``ring_range``).
    """

    start: np.ndarray  # int32 (n_bins + 1,)
    dx: np.ndarray  # int32
    dy: np.ndarray  # int32
    ring: np.ndarray  # int32 (n_bins, floor(max length) + 2)
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
    inv_scale: np.ndarray  # float64 1 / scale

    def __len__(self) -> int:
        return int(self.angles_deg.size)


def build_rtable(
    dx: np.ndarray, dy: np.ndarray, ori: np.ndarray, n_bins: int, tolerance_deg: float
) -> RTable:
    """R-table of points with displacements ``(dx, dy)`` (px, point minus reference) and
    orientation codes ``ori``."""
    tol = round(tolerance_deg / 360.0 * N_ORI)
    per_bin: list[list[int]] = [[] for _ in range(n_bins)]
    for i, q in enumerate(ori.tolist()):
        lo = ((q - tol) * n_bins) // N_ORI
        hi = ((q + tol) * n_bins) // N_ORI
        for b in range(lo, hi + 1):
            per_bin[b % n_bins].append(i)
    fx = np.round(np.asarray(dx, np.float64) * (1 << DISP_SHIFT)).astype(np.int32)
    fy = np.round(np.asarray(dy, np.float64) * (1 << DISP_SHIFT)).astype(np.int32)
    radius = np.hypot(fx.astype(np.float64), fy.astype(np.float64)) / (1 << DISP_SHIFT)
    start = np.zeros(n_bins + 1, np.int32)
    start[1:] = np.cumsum([len(b) for b in per_bin])
    # by radius within each bin; the point index breaks ties so the order is reproducible
    order = np.array(
        [i for b in per_bin for i in sorted(b, key=lambda i: (radius[i], i))], dtype=np.int64
    )
    lengths = radius[order] if order.size else np.zeros(0)
    n_r = math.floor(float(lengths.max()) if lengths.size else 0.0) + 2
    ring = np.empty((n_bins, n_r), np.int32)
    for b in range(n_bins):
        in_bin = lengths[start[b] : start[b + 1]]
        ring[b] = start[b] + np.searchsorted(in_bin, np.arange(n_r), side="left")
    if order.size == 0:
        empty = np.zeros(0, np.int32)
        return RTable(start, empty, empty, ring, int(ori.size))
    return RTable(start, fx[order].copy(), fy[order].copy(), ring, int(ori.size))


def hypotheses(angles_deg: np.ndarray, scales: np.ndarray) -> Hypotheses:
    """Every (scale, angle) pair, scale-major."""
    a = np.tile(np.asarray(angles_deg, np.float64), len(scales))
    s = np.repeat(np.asarray(scales, np.float64), len(angles_deg))
    rad = np.radians(a)
    one = float(1 << ROT_SHIFT)
    cos = np.round(s * np.cos(rad) * one).astype(np.int64)
    sin = np.round(s * np.sin(rad) * one).astype(np.int64)
    shift = (np.round(a / 360.0 * N_ORI).astype(np.int64) % N_ORI).astype(np.int32)
    return Hypotheses(a, s, cos, sin, shift, 1.0 / s)


def angle_grid(start_deg: float, stop_deg: float, step_deg: float) -> np.ndarray:
    """Angles from start to stop with at most ``step_deg`` between them; a full turn does not
    repeat its end point."""
    span = stop_deg - start_deg
    if span >= 360.0 - 1e-9:
        n = max(1, math.ceil(360.0 / step_deg))
        return start_deg + np.arange(n) * (360.0 / n)
    n = max(1, math.ceil(span / step_deg)) + 1
    return np.linspace(start_deg, stop_deg, n)


RING_SLACK_PX = 1.5  # > the 0.71 px a rounded vote can stray: keeps the ring conservative


def ring_range(
    ring: np.ndarray, b: int, px: float, py: float, aw: int, ah: int, inv_s: float
) -> tuple[int, int]:
    """The entries ``[k0, k1)`` of bin ``b`` that can vote from accumulator point (px, py) into
    the (ah, aw) accumulator, at scale ``1 / inv_s``: a superset of them, never fewer.

    A vote lands at ``p - round(s R d)``, within 0.71 px of distance ``s |d|`` from p; to fall in
    the window, ``s |d|`` must be within the window's circumradius (+ slack) of ``|p - centre|``.
    Entries outside that ring would vote outside the accumulator anyway, so skipping them
    leaves the votes unchanged; the slack makes float rounding (CPU vs GPU) irrelevant.

    Plain Python on purpose: compiled by ``njit`` for the CPU and as a CUDA device function.
    """
    ex = px - 0.5 * (aw - 1)
    ey = py - 0.5 * (ah - 1)
    rho = math.sqrt(ex * ex + ey * ey)
    margin = 0.5 * math.sqrt(aw * aw + ah * ah) + RING_SLACK_PX
    lo = (rho - margin) * inv_s
    hi = (rho + margin) * inv_s
    last = ring.shape[1] - 1
    r0 = 0
    if lo > 0.0:
        r0 = min(int(lo), last)  # floor: entries from this length on (>= lo included)
    r1 = last
    if hi + 2.0 < last:
        r1 = int(hi) + 2  # > ceil(hi): entries up to this length (<= hi included)
    return ring[b, r0], ring[b, r1]
