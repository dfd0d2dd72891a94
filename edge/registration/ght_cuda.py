"""Generalized Hough voting with Numba-CUDA: the same votes as ``ght_cpu``, bit for bit.

One thread per (frame edge point, hypothesis) walks its R-table bin and adds its votes with
``cuda.atomic.add``; integer votes make the result independent of the order the atomics land.
The per-slice peak is a block reduction with the same tie-break as the CPU (lowest index), so
only the peaks travel back to the host.

Imported only when device="cuda" is asked for; without a GPU it runs under Numba's simulator
(``NUMBA_ENABLE_CUDASIM=1`` set before numba is first imported).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numba import cuda as _cuda

from edge.registration.edges import N_ORI, EdgePoints
from edge.registration.errors import DeviceUnavailable
from edge.registration.rtable import VOTE_HALF, VOTE_SHIFT, Hypotheses, RTable, ring_range

log = logging.getLogger(__name__)

# numba.cuda's intrinsics have no usable static types; treat the module as dynamic.
cuda: Any = _cuda

_ring = cuda.jit(device=True)(ring_range)

_REDUCE_THREADS = 64  # threads per block in the clear / peak kernels (a power of two)
_VOTE_BLOCK = (64, 2)  # (frame points, hypotheses) per block


@cuda.jit
def _clear(acc: Any) -> None:
    h = cuda.blockIdx.x
    _, ah, aw = acc.shape
    for i in range(cuda.threadIdx.x, ah * aw, cuda.blockDim.x):
        acc[h, i // aw, i % aw] = 0


@cuda.jit
def _vote(
    fx: Any, fy: Any, fq: Any, hc: Any, hs: Any, hq: Any, start: Any, rdx: Any, rdy: Any,
    ring_idx: Any, hinv: Any, ring: Any, x0: Any, y0: Any, acc: Any,
) -> None:  # fmt: skip
    j, h = cuda.grid(2)
    if j >= fx.size or h >= hc.size:
        return
    _, ah, aw = acc.shape
    n_bins = start.size - 1
    c = hc[h]
    s = hs[h]
    b = (((fq[j] + hq[h]) % N_ORI) * n_bins) // N_ORI
    px = fx[j] - x0
    py = fy[j] - y0
    k0 = start[b]
    k1 = start[b + 1]
    if ring:
        k0, k1 = _ring(ring_idx, b, px, py, aw, ah, hinv[h])
    for k in range(k0, k1):
        dx = np.int64(rdx[k])
        dy = np.int64(rdy[k])
        vx = px - ((c * dx + s * dy + VOTE_HALF) >> VOTE_SHIFT)
        vy = py - ((c * dy - s * dx + VOTE_HALF) >> VOTE_SHIFT)
        if vx >= 0 and vx < aw and vy >= 0 and vy < ah:
            cuda.atomic.add(acc, (h, vy, vx), 1)


@cuda.jit
def _peaks(acc: Any, best_val: Any, best_idx: Any) -> None:
    h = cuda.blockIdx.x
    t = cuda.threadIdx.x
    _, ah, aw = acc.shape
    sv = cuda.shared.array(_REDUCE_THREADS, np.int32)
    si = cuda.shared.array(_REDUCE_THREADS, np.int64)
    v_best = -1
    i_best = 0
    for i in range(t, ah * aw, _REDUCE_THREADS):  # increasing i: the first max is the lowest
        v = acc[h, i // aw, i % aw]
        if v > v_best:
            v_best = v
            i_best = i
    sv[t] = v_best
    si[t] = i_best
    cuda.syncthreads()
    step = _REDUCE_THREADS // 2
    while step > 0:
        if t < step:
            ov = sv[t + step]
            oi = si[t + step]
            if ov > sv[t] or (ov == sv[t] and oi < si[t]):
                sv[t] = ov
                si[t] = oi
        cuda.syncthreads()
        step //= 2
    if t == 0:
        best_val[h] = sv[0]
        best_idx[h] = si[0]


class CudaVoter:
    """Voting backend on the GPU. The accumulator stays on the device; ``accumulator`` copies
    it back on demand (tests, diagnostics)."""

    name = "cuda"

    def __init__(self) -> None:
        if not cuda.is_available():
            raise DeviceUnavailable(
                "device='cuda': Numba finds no usable CUDA GPU/driver "
                "(install the CUDA driver and numba-cuda, or use device='cpu')"
            )
        self._tables: dict[int, tuple[RTable, tuple[Any, ...]]] = {}

    def _table(self, table: RTable) -> tuple[Any, ...]:
        # R-tables are fixed for a template: upload each once and keep it on the device.
        cached = self._tables.get(id(table))
        if cached is None or cached[0] is not table:
            arrays = (table.start, table.dx, table.dy, table.ring)
            cached = (table, tuple(cuda.to_device(a) for a in arrays))
            self._tables[id(table)] = cached
        return cached[1]

    def vote(
        self,
        points: EdgePoints,
        hyp: Hypotheses,
        table: RTable,
        origin: tuple[int, int],
        shape: tuple[int, int],
        keep: bool = True,
        ring: bool = False,
    ) -> tuple[object, np.ndarray, np.ndarray]:
        """Same contract as ``CpuVoter.vote``; the accumulator (a device array) is always
        returned, whatever ``keep`` says: it has to exist for the peak reduction anyway."""
        n_h = len(hyp)
        acc = cuda.device_array((n_h, shape[0], shape[1]), dtype=np.int32)
        _clear[n_h, _REDUCE_THREADS](acc)
        start, rdx, rdy, ring_idx = self._table(table)
        if len(points):
            grid = (
                (len(points) + _VOTE_BLOCK[0] - 1) // _VOTE_BLOCK[0],
                (n_h + _VOTE_BLOCK[1] - 1) // _VOTE_BLOCK[1],
            )
            _vote[grid, _VOTE_BLOCK](
                cuda.to_device(points.x), cuda.to_device(points.y), cuda.to_device(points.ori),
                cuda.to_device(hyp.cos), cuda.to_device(hyp.sin), cuda.to_device(hyp.ori_shift),
                start, rdx, rdy, ring_idx, cuda.to_device(hyp.inv_scale), bool(ring),
                np.int64(origin[0]), np.int64(origin[1]), acc,
            )  # fmt: skip
        best_val = cuda.device_array(n_h, dtype=np.int32)
        best_idx = cuda.device_array(n_h, dtype=np.int64)
        _peaks[n_h, _REDUCE_THREADS](acc, best_val, best_idx)
        return acc, best_val.copy_to_host(), best_idx.copy_to_host()

    def accumulator(self, acc: object) -> np.ndarray:
        """Host copy of a device accumulator returned by ``vote``."""
        return np.asarray(acc.copy_to_host())  # type: ignore[attr-defined]
