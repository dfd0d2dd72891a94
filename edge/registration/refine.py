"""Sub-pixel, sub-degree pose refinement by robust least squares on edge distance.

Why this and not quadratic interpolation of the accumulator: vote peaks are quantised twice
(pixel cells, angle steps) and their shape depends on clutter and occlusion, so interpolating
them gives a few tenths of a pixel at best. Instead, every template edge point (sub-pixel, with
its normal) is mapped into the frame at the voted pose, the frame's edge is searched along that
normal (the maximum of the intensity derivative, parabola-interpolated), and a Gauss-Newton
step minimises the Huber-weighted point-to-edge distances over (x, y, angle[, scale]). Points
with no matching edge (occlusion, defect, clutter) get no weight, so a partly hidden or damaged
part still aligns on the edges that are there. The same profile search localises the
template's own points at train time, so both sides use the same sub-pixel edge definition.

The fraction of template points that find their edge at the final pose (within ``CONFIRM_PX``,
with at least ``MIN_RATIO`` of the template's edge strength) is the registration confidence:
the vote count of the final pose, normalised by the template's point count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.numba_cache import cached_njit
from edge.registration.pose import Pose

CONFIRM_PX = 1.0  # a point is confirmed when its edge is at most this far from where it maps
MIN_RATIO = 0.35  # ... and at least this fraction of the template's edge strength (shadows)
HUBER_PX = 1.0  # residuals beyond this are down-weighted (occlusion, clutter)
EARLY_STRIDE = 4  # the first iterations use every 4th point
RIM_PX = 100.0  # typical lever arm turning an angle/scale step into pixels, for convergence


@dataclass(frozen=True, eq=False)
class FinePoints:
    """Template edge points at full resolution: displacement from the reference point (px),
    unit normal (gradient direction, towards brighter) and edge strength (derivative peak)."""

    dx: np.ndarray  # float64
    dy: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    strength: np.ndarray

    def __len__(self) -> int:
        return int(self.dx.size)


def smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """The float32 Gaussian-smoothed image that edge profiles are read from."""
    return cv2.GaussianBlur(image.astype(np.float32, copy=False), (0, 0), sigma)


def localise(
    smoothed: np.ndarray, x: np.ndarray, y: np.ndarray, nx: np.ndarray, ny: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sub-pixel edge positions near pixels (x, y) along normals (nx, ny): (x', y', strength);
    strength 0 where no edge was found."""
    return _localise(smoothed, x.astype(np.float64), y.astype(np.float64), nx, ny)


def refine(
    smoothed: np.ndarray,
    origin: tuple[int, int],
    points: FinePoints,
    pose: Pose,
    *,
    radius: float,
    iterations: int,
    fit_scale: bool,
    min_ratio: float = MIN_RATIO,
) -> tuple[Pose, float]:
    """Refined pose and confidence. ``smoothed`` is a (ROI of the) level-0 frame smoothed like
    the template; ``origin`` is its top-left corner in frame pixels."""
    x, y, a, s, conf = _refine(
        smoothed, float(origin[0]), float(origin[1]),
        points.dx, points.dy, points.nx, points.ny, points.strength,
        pose.x, pose.y, math.radians(pose.angle_deg), pose.scale,
        float(radius), int(iterations), bool(fit_scale), float(min_ratio),
    )  # fmt: skip
    return Pose(x, y, math.degrees(a), s), conf


@cached_njit(nogil=True, fastmath=True)
def _bilinear(img: np.ndarray, x: float, y: float) -> float:
    x0 = math.floor(x)
    y0 = math.floor(y)
    fx = x - x0
    fy = y - y0
    top = img[y0, x0] * (1.0 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1.0 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1.0 - fy) + bottom * fy


@cached_njit(nogil=True)
def _edge_along(
    img: np.ndarray, qx: float, qy: float, mx: float, my: float, radius: int, floor: float
) -> tuple[float, float]:
    """Signed distance along (mx, my) from (qx, qy) to the nearest local maximum of the
    derivative along that direction that is >= ``floor`` (> 0), and its value; (0, 0) if none
    or if the profile leaves the image."""
    h, w = img.shape
    n = 2 * radius + 3
    ex = (radius + 1) * mx
    ey = (radius + 1) * my
    # the profile is a segment: both ends inside means all of it is (NaN fails too)
    if not (
        0.0 <= qx - ex < w - 1
        and 0.0 <= qx + ex < w - 1
        and 0.0 <= qy - ey < h - 1
        and 0.0 <= qy + ey < h - 1
    ):
        return 0.0, 0.0
    prof = np.empty(n)
    for i in range(n):
        ti = i - radius - 1
        prof[i] = _bilinear(img, qx + ti * mx, qy + ti * my)
    best_t = 0.0
    best_g = 0.0
    best_d = 1e9
    # derivative at t: (prof[t+1] - prof[t-1]) / 2 ; t runs over -radius..radius
    for i in range(1, n - 1):
        g = 0.5 * (prof[i + 1] - prof[i - 1])
        if g < floor:
            continue
        gl = 0.5 * (prof[i] - prof[i - 2]) if i >= 2 else -1e30
        gr = 0.5 * (prof[i + 2] - prof[i]) if i + 2 < n else -1e30
        if g < gl or g <= gr:
            continue
        off = 0.0
        if i >= 2 and i + 2 < n:
            den = gl - 2.0 * g + gr
            if den < 0.0:
                off = 0.5 * (gl - gr) / den
        t = (i - radius - 1) + off
        if abs(t) < best_d:
            best_d = abs(t)
            best_t = t
            best_g = g
    return best_t, best_g


@cached_njit(nogil=True)
def _localise(
    img: np.ndarray, x: np.ndarray, y: np.ndarray, nx: np.ndarray, ny: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.size
    ox = np.empty(n)
    oy = np.empty(n)
    st = np.zeros(n)
    for i in range(n):
        t, g = _edge_along(img, x[i], y[i], nx[i], ny[i], 2, 1e-6)
        if g <= 0.0 or abs(t) > 1.0:
            ox[i] = x[i]
            oy[i] = y[i]
            continue
        ox[i] = x[i] + t * nx[i]
        oy[i] = y[i] + t * ny[i]
        st[i] = g
    return ox, oy, st


@cached_njit(nogil=True)
def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Gaussian elimination with partial pivoting (tiny systems; avoids a LAPACK dependency).
    Returns zeros for a singular system."""
    n = b.size
    m = a.copy()
    v = b.copy()
    for c in range(n):
        p = c
        for r in range(c + 1, n):
            if abs(m[r, c]) > abs(m[p, c]):
                p = r
        if abs(m[p, c]) < 1e-12:
            return np.zeros(n)
        if p != c:
            for k in range(n):
                m[c, k], m[p, k] = m[p, k], m[c, k]
            v[c], v[p] = v[p], v[c]
        for r in range(c + 1, n):
            f = m[r, c] / m[c, c]
            for k in range(c, n):
                m[r, k] -= f * m[c, k]
            v[r] -= f * v[c]
    out = np.zeros(n)
    for r in range(n - 1, -1, -1):
        acc = v[r]
        for k in range(r + 1, n):
            acc -= m[r, k] * out[k]
        out[r] = acc / m[r, r]
    return out


@cached_njit(nogil=True)
def _refine(
    img: np.ndarray,
    ox: float,
    oy: float,
    dx: np.ndarray,
    dy: np.ndarray,
    nx: np.ndarray,
    ny: np.ndarray,
    strength: np.ndarray,
    x: float,
    y: float,
    a: float,
    s: float,
    radius: float,
    iterations: int,
    fit_scale: bool,
    min_ratio: float,
) -> tuple[float, float, float, float, float]:
    n_par = 4 if fit_scale else 3
    n = dx.size
    rad = max(1, math.ceil(radius))
    confirmed = 0
    converged = False
    for it in range(iterations + 1):
        last = it == iterations or converged
        # shrink the search as the pose converges: fewer chances to lock onto clutter
        r = 2 if last else (rad if it == 0 else max(2, rad // (2 * it)))
        # the first, rough iterations need far fewer points than the last ones
        stride = 1 if last or it >= iterations - 2 else EARLY_STRIDE
        c = math.cos(a)
        sn = math.sin(a)
        ata = np.zeros((n_par, n_par))
        atb = np.zeros(n_par)
        jac = np.zeros(n_par)
        confirmed = 0
        for i in range(0, n, stride):
            # template point and normal mapped into the frame (module pose convention)
            rx = c * dx[i] + sn * dy[i]
            ry = -sn * dx[i] + c * dy[i]
            qx = x + s * rx - ox
            qy = y + s * ry - oy
            mx = c * nx[i] + sn * ny[i]
            my = -sn * nx[i] + c * ny[i]
            t, g = _edge_along(img, qx, qy, mx, my, r, min_ratio * strength[i])
            if g <= 0.0:
                continue
            if abs(t) <= CONFIRM_PX:
                confirmed += 1
            if last:
                continue
            w = 1.0 if abs(t) <= HUBER_PX else HUBER_PX / abs(t)
            # d(q . m)/d(params): translation, angle (rad), scale
            jac[0] = mx
            jac[1] = my
            jac[2] = mx * s * (-sn * dx[i] + c * dy[i]) + my * s * (-c * dx[i] - sn * dy[i])
            if fit_scale:
                jac[3] = mx * rx + my * ry
            for p in range(n_par):
                atb[p] += w * jac[p] * t
                for q in range(n_par):
                    ata[p, q] += w * jac[p] * jac[q]
        if last:
            break
        for p in range(n_par):
            ata[p, p] += 1e-6  # keeps a degenerate edge set (one straight edge) solvable
        step = _solve(ata, atb)
        x += step[0]
        y += step[1]
        a += step[2]
        if fit_scale:
            s += step[3]
        # converged: the step moves no template point by more than ~0.01 px
        moved = abs(step[0]) + abs(step[1]) + abs(step[2]) * RIM_PX
        if fit_scale:
            moved += abs(step[3]) * RIM_PX
        converged = stride == 1 and moved < 0.01
    return x, y, a, s, confirmed / max(n, 1)
