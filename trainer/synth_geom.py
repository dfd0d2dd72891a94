"""Small geometry and rasterisation helpers for the synthetic part generator.

OpenCV only anti-aliases 8-bit images, so shapes are drawn as uint8 coverage and turned into
float32 in [0, 1]. Coordinates are float pixels; they are drawn with 4 fractional bits.
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np

SHIFT = 4
_ONE = 1 << SHIFT


def fixed(points: np.ndarray) -> np.ndarray:
    """Float (N, 2) points -> int32 fixed-point points for cv2 drawing with ``shift=SHIFT``."""
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


def fill_coverage(shape: tuple[int, int], polys: list[np.ndarray]) -> np.ndarray:
    """Anti-aliased coverage (float32, [0, 1]) of the union of filled polygons."""
    img = np.zeros(shape, np.uint8)
    for p in polys:  # one call each: a single fillPoly would XOR overlapping polygons
        cv2.fillPoly(img, [fixed(p)], 255, cv2.LINE_AA, SHIFT)
    return img.astype(np.float32) / 255.0


def line_coverage(shape: tuple[int, int], points: np.ndarray, thickness: int) -> np.ndarray:
    """Anti-aliased coverage (float32, [0, 1]) of an open polyline."""
    img = np.zeros(shape, np.uint8)
    cv2.polylines(img, [fixed(points)], False, 255, max(1, thickness), cv2.LINE_AA, SHIFT)
    return img.astype(np.float32) / 255.0


def circle_polygon(cx: float, cy: float, r: float, n: int = 0) -> np.ndarray:
    """Polygon approximating a circle; enough vertices to look round at any radius."""
    n = n or max(16, int(2 * math.pi * r / 1.5))
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def stadium_polygon(p1: tuple[float, float], p2: tuple[float, float], hw: float) -> np.ndarray:
    """A slot shape: the segment p1-p2 thickened by ``hw`` with round ends."""
    (x1, y1), (x2, y2) = p1, p2
    a = math.atan2(y2 - y1, x2 - x1)
    n = max(8, int(math.pi * hw / 1.5))
    t1 = np.linspace(a + math.pi / 2, a + 3 * math.pi / 2, n)
    t2 = np.linspace(a - math.pi / 2, a + math.pi / 2, n)
    cap1 = np.stack([x1 + hw * np.cos(t1), y1 + hw * np.sin(t1)], axis=1)
    cap2 = np.stack([x2 + hw * np.cos(t2), y2 + hw * np.sin(t2)], axis=1)
    return np.concatenate([cap1, cap2])


def rounded_rect_polygon(cx: float, cy: float, hw: float, hh: float, r: float) -> np.ndarray:
    """Axis-aligned rectangle of half sizes (hw, hh) with corner radius r."""
    r = min(r, hw, hh)
    n = max(4, int(math.pi * r / 3.0))
    pts = []
    corners = (
        (hw - r, hh - r, 0.0),
        (-hw + r, hh - r, 90.0),
        (-hw + r, -hh + r, 180.0),
        (hw - r, -hh + r, 270.0),
    )
    for ox, oy, start in corners:
        t = np.radians(np.linspace(start, start + 90.0, n))
        pts.append(np.stack([cx + ox + r * np.cos(t), cy + oy + r * np.sin(t)], axis=1))
    return np.concatenate(pts)


def blob_polygon(
    rng: np.random.Generator, cx: float, cy: float, r: float, jag: float, n: int = 24
) -> np.ndarray:
    """An irregular closed blob: a circle whose radius wobbles by about ``jag`` (fraction)."""
    t = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    radius = np.full(n, r)
    for k in (2, 3, 5):  # a few low harmonics give a natural lumpy outline
        radius += r * jag / k * rng.uniform(0.3, 1.0) * np.cos(k * t + rng.uniform(0, 2 * math.pi))
    radius *= 1.0 + 0.15 * jag * rng.standard_normal(n)
    radius = np.maximum(radius, 0.3 * r)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def bezier(points: np.ndarray, n: int) -> np.ndarray:
    """Sample a Bezier curve of any degree at ``n`` points (de Casteljau)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = [np.asarray(p, dtype=np.float64) for p in points]
    while len(pts) > 1:
        pts = [(1 - t) * a + t * b for a, b in itertools.pairwise(pts)]
    out: np.ndarray = np.broadcast_to(pts[0], (n, 2)).copy()
    return out


def dilate(mask: np.ndarray, px: int = 1) -> np.ndarray:
    """Binary dilation by ``px`` pixels (3x3 steps); keeps dtype."""
    if px <= 0:
        return mask
    return cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=px)


def to_mask(cond: np.ndarray, grow_px: int = 1) -> np.ndarray:
    """Boolean image -> uint8 0/255 mask, grown by ``grow_px`` pixels."""
    return dilate(cond.astype(np.uint8) * 255, grow_px)


def gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a kernel sized from sigma (no-op for tiny sigma)."""
    if sigma < 0.2:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
