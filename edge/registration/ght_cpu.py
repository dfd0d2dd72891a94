"""Generalized Hough voting on the CPU (Numba, parallel over pose hypotheses).

One accumulator slice per (angle, scale) hypothesis; each thread owns whole slices, so the
votes need no atomics. On the hot path a thread reuses one cache-resident slice for all its
hypotheses and finds the peak while voting, without scanning the slice (``vote_peak_running``).
Votes below ``PARALLEL_MIN_VOTES`` (the local votes, and the coarse vote of a 256 px template
in a 1024 px frame, ~70k votes) run on the calling thread: waking the worker threads costs
more than it saves, a lot more on a busy machine, and it leaves the other cores to inference.
The arithmetic is integer-only (so ``fastmath`` has nothing to do here) and matches
``ght_cuda`` exactly (see ``rtable``).
"""

from __future__ import annotations

import logging

import numpy as np
from numba import get_num_threads, prange

from edge.numba_cache import cached_njit
from edge.registration.edges import N_ORI, EdgePoints
from edge.registration.rtable import VOTE_HALF, VOTE_SHIFT, Hypotheses, RTable, ring_range

log = logging.getLogger(__name__)

_ring = cached_njit(nogil=True)(ring_range)

# Below about this many votes a parallel region costs more (thread wake-up) than it saves.
PARALLEL_MIN_VOTES = 200_000


@cached_njit(nogil=True)
def vote_slice(
    h: int,
    fx: np.ndarray,
    fy: np.ndarray,
    fq: np.ndarray,
    hc: np.ndarray,
    hs: np.ndarray,
    hq: np.ndarray,
    start: np.ndarray,
    rdx: np.ndarray,
    rdy: np.ndarray,
    ring_idx: np.ndarray,
    hinv: np.ndarray,
    ring: bool,
    x0: int,
    y0: int,
    acc: np.ndarray,
) -> None:
    """Add the votes of hypothesis ``h`` into ``acc[h]`` (cell (0, 0) is level pixel (x0, y0)).

    A frame edge point p with orientation code q votes, for every template entry d of R-table
    bin ``bin(q + shift_h)``, for the reference point ``p - s R(a) d``.
    """
    _, ah, aw = acc.shape
    n_bins = start.size - 1
    c = hc[h]
    s = hs[h]
    shift = hq[h]
    inv_s = hinv[h]
    for j in range(fx.size):
        b = (((fq[j] + shift) % N_ORI) * n_bins) // N_ORI
        px = fx[j] - x0
        py = fy[j] - y0
        k0 = start[b]
        k1 = start[b + 1]
        if ring:
            k0, k1 = _ring(ring_idx, b, px, py, aw, ah, inv_s)
        for k in range(k0, k1):
            dx = np.int64(rdx[k])
            dy = np.int64(rdy[k])
            vx = px - ((c * dx + s * dy + VOTE_HALF) >> VOTE_SHIFT)
            vy = py - ((c * dy - s * dx + VOTE_HALF) >> VOTE_SHIFT)
            if vx >= 0 and vx < aw and vy >= 0 and vy < ah:
                acc[h, vy, vx] += 1


@cached_njit(nogil=True)
def slice_peak(acc: np.ndarray, h: int) -> tuple[int, int]:
    """(votes, flat index) of the maximum of ``acc[h]``; ties go to the lowest index."""
    _, ah, aw = acc.shape
    best = -1
    at = 0
    for y in range(ah):
        for x in range(aw):
            v = acc[h, y, x]
            if v > best:
                best = v
                at = y * aw + x
    return best, at


@cached_njit(nogil=True)
def vote_peak_running(
    h: int,
    fx: np.ndarray,
    fy: np.ndarray,
    fq: np.ndarray,
    hc: np.ndarray,
    hs: np.ndarray,
    hq: np.ndarray,
    start: np.ndarray,
    rdx: np.ndarray,
    rdy: np.ndarray,
    ring_idx: np.ndarray,
    hinv: np.ndarray,
    ring: bool,
    x0: int,
    y0: int,
    buf: np.ndarray,
) -> tuple[int, int]:
    """``slice_peak`` of hypothesis ``h`` in one pass over the votes, using the scratch slice
    ``buf`` (1, h, w) and no scan of it.

    Counts only grow, so the cells whose final count is the maximum B are exactly the cells
    that ever reach B; keeping the lowest index among cells reaching the running maximum
    therefore gives the lowest index holding B, whatever the order of the votes: the same
    answer as a full scan (and as the CUDA reduction).
    """
    _, ah, aw = buf.shape
    buf[:] = 0
    n_bins = start.size - 1
    c = hc[h]
    s = hs[h]
    shift = hq[h]
    inv_s = hinv[h]
    best = 0
    at = 0
    for j in range(fx.size):
        b = (((fq[j] + shift) % N_ORI) * n_bins) // N_ORI
        px = fx[j] - x0
        py = fy[j] - y0
        k0 = start[b]
        k1 = start[b + 1]
        if ring:
            k0, k1 = _ring(ring_idx, b, px, py, aw, ah, inv_s)
        for k in range(k0, k1):
            dx = np.int64(rdx[k])
            dy = np.int64(rdy[k])
            vx = px - ((c * dx + s * dy + VOTE_HALF) >> VOTE_SHIFT)
            vy = py - ((c * dy - s * dx + VOTE_HALF) >> VOTE_SHIFT)
            if vx >= 0 and vx < aw and vy >= 0 and vy < ah:
                v = buf[0, vy, vx] + 1
                buf[0, vy, vx] = v
                if v >= best:
                    i = vy * aw + vx
                    if v > best or i < at:
                        best = v
                        at = i
    return best, at


@cached_njit(parallel=True)
def vote_peaks(
    fx: np.ndarray,
    fy: np.ndarray,
    fq: np.ndarray,
    hc: np.ndarray,
    hs: np.ndarray,
    hq: np.ndarray,
    start: np.ndarray,
    rdx: np.ndarray,
    rdy: np.ndarray,
    ring_idx: np.ndarray,
    hinv: np.ndarray,
    ring: bool,
    x0: int,
    y0: int,
    bufs: np.ndarray,
    best_val: np.ndarray,
    best_idx: np.ndarray,
) -> None:
    """Per-slice peaks of every hypothesis; ``bufs`` (n_tasks, h, w) holds one scratch slice
    per task, each task takes every n_tasks-th hypothesis."""
    n_tasks = bufs.shape[0]
    n_h = hc.size
    for t in prange(n_tasks):
        buf = bufs[t : t + 1]
        for h in range(t, n_h, n_tasks):
            v, i = vote_peak_running(
                h, fx, fy, fq, hc, hs, hq, start, rdx, rdy, ring_idx, hinv, ring, x0, y0, buf
            )
            best_val[h] = v
            best_idx[h] = i


@cached_njit(nogil=True)
def vote_peaks_serial(
    fx: np.ndarray,
    fy: np.ndarray,
    fq: np.ndarray,
    hc: np.ndarray,
    hs: np.ndarray,
    hq: np.ndarray,
    start: np.ndarray,
    rdx: np.ndarray,
    rdy: np.ndarray,
    ring_idx: np.ndarray,
    hinv: np.ndarray,
    ring: bool,
    x0: int,
    y0: int,
    bufs: np.ndarray,
    best_val: np.ndarray,
    best_idx: np.ndarray,
) -> None:
    """``vote_peaks`` on the calling thread: for the small local votes, where waking the worker
    threads (up to a scheduler tick on a busy machine) costs more than the votes."""
    buf = bufs[0:1]
    for h in range(hc.size):
        v, i = vote_peak_running(
            h, fx, fy, fq, hc, hs, hq, start, rdx, rdy, ring_idx, hinv, ring, x0, y0, buf
        )
        best_val[h] = v
        best_idx[h] = i


@cached_njit(parallel=True)
def vote_full(
    fx: np.ndarray,
    fy: np.ndarray,
    fq: np.ndarray,
    hc: np.ndarray,
    hs: np.ndarray,
    hq: np.ndarray,
    start: np.ndarray,
    rdx: np.ndarray,
    rdy: np.ndarray,
    ring_idx: np.ndarray,
    hinv: np.ndarray,
    ring: bool,
    x0: int,
    y0: int,
    acc: np.ndarray,
    best_val: np.ndarray,
    best_idx: np.ndarray,
) -> None:
    """The whole accumulator (for tests and diagnostics): clear, vote, scan every slice."""
    for h in prange(acc.shape[0]):
        acc[h] = 0
        vote_slice(h, fx, fy, fq, hc, hs, hq, start, rdx, rdy, ring_idx, hinv, ring, x0, y0, acc)
        v, i = slice_peak(acc, h)
        best_val[h] = v
        best_idx[h] = i


class CpuVoter:
    """Voting backend on the CPU. Keeps one scratch slice per worker thread between frames."""

    name = "cpu"

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, int, int], np.ndarray] = {}

    def vote(
        self,
        points: EdgePoints,
        hyp: Hypotheses,
        table: RTable,
        origin: tuple[int, int],
        shape: tuple[int, int],
        keep: bool = False,
        ring: bool = False,
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Per-slice peak votes and flat indices of the accumulator (n_hyp, h, w) whose cell
        (0, 0) is level pixel ``origin``; the accumulator itself only when ``keep``. ``ring``:
        skip the R-table entries that cannot reach the accumulator (small local windows)."""
        best_val = np.zeros(len(hyp), np.int32)
        best_idx = np.zeros(len(hyp), np.int64)
        args = (
            points.x, points.y, points.ori, hyp.cos, hyp.sin, hyp.ori_shift,
            table.start, table.dx, table.dy, table.ring, hyp.inv_scale, ring,
            origin[0], origin[1],
        )  # fmt: skip
        if keep:
            acc = np.empty((len(hyp), shape[0], shape[1]), np.int32)
            vote_full(*args, acc, best_val, best_idx)
            return acc, best_val, best_idx
        votes = int(points.x.size) * len(hyp) * table.dx.size // max(table.n_bins, 1)
        if votes < PARALLEL_MIN_VOTES:
            vote_peaks_serial(*args, self._slices(1, shape), best_val, best_idx)
        else:
            tasks = min(get_num_threads(), len(hyp))
            vote_peaks(*args, self._slices(tasks, shape), best_val, best_idx)
        return None, best_val, best_idx

    def _slices(self, tasks: int, shape: tuple[int, int]) -> np.ndarray:
        key = (tasks, shape[0], shape[1])
        bufs = self._buffers.get(key)
        if bufs is None:
            if len(self._buffers) > 16:  # ROI shapes vary a little from frame to frame
                self._buffers.clear()
            bufs = np.empty(key, np.int32)
            self._buffers[key] = bufs
        return bufs

    def accumulator(self, acc: np.ndarray) -> np.ndarray:
        """Host copy of an accumulator returned by ``vote(..., keep=True)``."""
        return np.array(acc)
