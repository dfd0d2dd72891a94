"""Synthetic anomalies pasted into good images, for choosing settings without looking at any
defect: the threshold rule `synthetic` and the benchmark's rule comparison score held-out good
images and the same images with one of these pasted in.

A Perlin-noise blob (Perlin, "An image synthesizer", SIGGRAPH 1985; the anomaly shapes of DRAEM,
Zavrtanik et al., ICCV 2021) filled with one of: another good image's texture turned by 90°, a
brightness change, the image blurred (its texture gone), or a flat grey; blended in with a random
opacity. Small specks and thin curves stand for pits and cracks. Deterministic per generator.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def perlin_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """2-D gradient noise in about [-1, 1], float32 (H, W), with `cells` lattice cells along the
    longer side (Perlin 1985, quintic fade)."""
    height, width = shape
    cy = max(1, round(cells * height / max(shape)))
    cx = max(1, round(cells * width / max(shape)))
    angles = rng.uniform(0, 2 * math.pi, (cy + 1, cx + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y = np.arange(height) * cy / height
    x = np.arange(width) * cx / width
    yi, xi = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - yi)[:, None], (x - xi)[None, :]

    def corner(dy: int, dx: int) -> np.ndarray:
        g = gradients[yi[:, None] + dy, xi[None, :] + dx]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    uy, ux = fade(fy), fade(fx)
    top = corner(0, 0) * (1 - ux) + corner(0, 1) * ux
    bottom = corner(1, 0) * (1 - ux) + corner(1, 1) * ux
    return (math.sqrt(2) * (top * (1 - uy) + bottom * uy)).astype(np.float32)


def anomaly_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """float32 (H, W) opacity in [0, 1]: a Perlin blob, a few specks, or a thin curve."""
    height, width = shape
    kind = rng.integers(0, 3)
    mask = np.zeros(shape, np.float32)
    if kind == 0:
        noise = perlin_noise(shape, int(2 ** rng.integers(1, 4)), rng)
        mask = (noise > rng.uniform(0.35, 0.6)).astype(np.float32)
    elif kind == 1:
        side = max(height, width)
        for _ in range(int(rng.integers(1, 4))):
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            axes = tuple(int(v) for v in rng.integers(1, max(2, side // 24) + 1, 2))
            cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:
        steps = int(rng.integers(3, 8))
        start = rng.uniform(0, [width, height])
        points = np.cumsum(rng.normal(0, max(height, width) / 16, (steps, 2)), axis=0) + start
        thickness = int(rng.integers(1, max(2, max(height, width) // 64) + 1))
        cv2.polylines(mask, [points.astype(np.int32)], False, 1.0, thickness)
    if mask.sum() < 1:
        mask[height // 2, width // 2] = 1.0
    return mask


def paste_anomaly(
    image: np.ndarray, donor: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(image with a synthetic anomaly, its bool mask) for a float32 (C, H, W) image in [0, 1];
    `donor` is another good image of the same shape that lends its texture."""
    height, width = image.shape[1:]
    mask = anomaly_mask((height, width), rng)
    fill = int(rng.integers(0, 4))
    if fill == 0:
        turned = np.rot90(donor, k=1, axes=(1, 2))
        source = np.stack([cv2.resize(c, (width, height)) for c in turned])
    elif fill == 1:
        source = image + rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.4)
    elif fill == 2:
        source = np.stack([cv2.GaussianBlur(c, (0, 0), rng.uniform(2, 6)) for c in image])
    else:
        source = np.full_like(image, rng.uniform(0.0, 1.0))
    opacity = mask * rng.uniform(0.5, 1.0)
    out = image * (1 - opacity) + np.clip(source, 0, 1) * opacity
    return out.astype(np.float32), mask > 0.5
