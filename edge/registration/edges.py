"""Edge points: Sobel gradient, non-maximum suppression, orientation codes.

The same function extracts the template's points at train time and the frame's points at run
time, so both sides quantise orientation identically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.numba_cache import cached_njit

# Gradient orientation is carried as an integer code, N_ORI codes per full turn, so that the
# voting kernels (CPU and CUDA) work in integers only and agree bit for bit.
N_ORI = 4096


@dataclass(frozen=True)
class EdgePoints:
    """Edge pixels of one image (or ROI): integer positions in that image's level coordinates,
    orientation code of the gradient (direction of increasing intensity) and its magnitude."""

    x: np.ndarray  # int32
    y: np.ndarray  # int32
    ori: np.ndarray  # int32, in [0, N_ORI)
    mag: np.ndarray  # float32, intensity units per pixel

    def __len__(self) -> int:
        return int(self.x.size)


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel 3x3 derivatives, scaled to intensity units per pixel."""
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return gx, gy


def edge_points(image: np.ndarray, threshold: float, x0: int = 0, y0: int = 0) -> EdgePoints:
    """NMS edge pixels of ``image`` whose gradient magnitude is >= ``threshold``; positions are
    offset by ``(x0, y0)`` (the ROI's origin in its level)."""
    gx, gy = gradients(image)
    xs, ys, ori, mag = _nms(gx, gy, np.float32(threshold))
    if x0 or y0:
        xs += np.int32(x0)
        ys += np.int32(y0)
    return EdgePoints(xs, ys, ori, mag)


@cached_njit(nogil=True)
def _nms(
    gx: np.ndarray, gy: np.ndarray, threshold: np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    h, w = gx.shape
    mag = np.sqrt(gx * gx + gy * gy)
    cap = (h - 2) * (w - 2) if h > 2 and w > 2 else 0
    xs = np.empty(cap, np.int32)
    ys = np.empty(cap, np.int32)
    ori = np.empty(cap, np.int32)
    mags = np.empty(cap, np.float32)
    t22 = 0.41421356  # tan(22.5 deg): sector boundaries of the 4 NMS directions
    scale = N_ORI / (2.0 * math.pi)
    n = 0
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            m = mag[y, x]
            if m < threshold:
                continue
            ax = abs(gx[y, x])
            ay = abs(gy[y, x])
            if ay <= t22 * ax:
                a, b = mag[y, x - 1], mag[y, x + 1]
            elif ax <= t22 * ay:
                a, b = mag[y - 1, x], mag[y + 1, x]
            elif gx[y, x] * gy[y, x] > 0:
                a, b = mag[y - 1, x - 1], mag[y + 1, x + 1]
            else:
                a, b = mag[y - 1, x + 1], mag[y + 1, x - 1]
            # strict on one side only, so a two-pixel plateau keeps exactly one pixel
            if m > a and m >= b:
                code = math.floor(math.atan2(gy[y, x], gx[y, x]) * scale + 0.5)
                xs[n] = x
                ys[n] = y
                ori[n] = code % N_ORI
                mags[n] = m
                n += 1
    return xs[:n].copy(), ys[:n].copy(), ori[:n].copy(), mags[:n].copy()
