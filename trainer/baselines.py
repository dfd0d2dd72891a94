"""Two plain baselines that every engine is measured against on the same split
(`partsight-train benchmark`): a per-pixel Gaussian of the pixel values, and PCA reconstruction.

Both model one fixed pixel grid, so every image is resized to `size` first (INTER_AREA; a
baseline may distort aspect: it is a yardstick, not a product, and this is how such baselines are
run in the anomaly-detection literature, e.g. at 128²). Their maps are brought back to each
image's own size for the pixel metrics.

- Per-pixel Gaussian: mean μ(p) and standard deviation σ(p) of each pixel over the good training
  images; the map is the squared z-score ((x - μ) / σ)² averaged over channels, the image score its
  maximum. σ is floored so a pixel that never varied cannot divide by zero.
- PCA: the first `components` principal components of the flattened good training images; the
  map is the squared reconstruction error per pixel (averaged over channels), the image score its
  mean (the classic reconstruction-error detector).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

BASELINE_SIZE = (128, 128)  # (W, H) of the grid both baselines model
PCA_COMPONENTS = 64
_STD_FLOOR = 1e-3  # in [0, 1] pixel units


@dataclass(frozen=True)
class BaselineOutput:
    """score: the image score (higher = more anomalous); anomaly_map: float32 (H, W) at the
    image's own size."""

    score: float
    anomaly_map: np.ndarray


def to_grid(image: np.ndarray, size: tuple[int, int] = BASELINE_SIZE) -> np.ndarray:
    """A stored image (uint8/uint16, (H, W) or (H, W, C)) as float32 (H', W', C) in [0, 1] on the
    baseline grid of `size` = (W', H')."""
    scale = 255.0 if image.dtype == np.uint8 else 65535.0
    scaled = cv2.resize(image.astype(np.float32) / scale, size, interpolation=cv2.INTER_AREA)
    return scaled[:, :, None] if scaled.ndim == 2 else scaled


def _back(grid_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A (H', W') map on the grid, resized to the image's (H, W)."""
    resized = cv2.resize(grid_map, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized.astype(np.float32)


class PerPixelGaussian:
    """Per-pixel Gaussian of the pixel values (see the module docstring)."""

    name = "per-pixel Gaussian"

    def __init__(self, size: tuple[int, int] = BASELINE_SIZE) -> None:
        self.size = size
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, images: Sequence[np.ndarray]) -> PerPixelGaussian:
        """images: stored good images of any size. Raises ValueError for fewer than 2."""
        if len(images) < 2:
            raise ValueError("the per-pixel Gaussian needs at least 2 good images")
        stack = np.stack([to_grid(im, self.size) for im in images]).astype(np.float64)
        self.mean = stack.mean(axis=0)
        self.std = np.maximum(stack.std(axis=0, ddof=1), _STD_FLOOR)
        return self

    def score(self, image: np.ndarray) -> BaselineOutput:
        if self.mean is None or self.std is None:
            raise RuntimeError("fit the baseline first")
        z2 = (((to_grid(image, self.size) - self.mean) / self.std) ** 2).mean(axis=2)
        return BaselineOutput(float(z2.max()), _back(z2.astype(np.float32), image.shape))


class PcaReconstruction:
    """PCA reconstruction error (see the module docstring)."""

    name = "PCA"

    def __init__(self, components: int = PCA_COMPONENTS, size: tuple[int, int] = BASELINE_SIZE):
        self.components = components
        self.size = size
        self.mean: np.ndarray | None = None
        self.basis: np.ndarray | None = None  # (k, D), orthonormal rows

    def fit(self, images: Sequence[np.ndarray]) -> PcaReconstruction:
        """images: stored good images of any size. Uses min(components, N - 1) components;
        raises ValueError for fewer than 2 images."""
        if len(images) < 2:
            raise ValueError("PCA needs at least 2 good images")
        data = np.stack([to_grid(im, self.size).ravel() for im in images]).astype(np.float64)
        self.mean = data.mean(axis=0)
        _, _, vt = np.linalg.svd(data - self.mean, full_matrices=False)
        self.basis = vt[: min(self.components, len(images) - 1)]
        return self

    def score(self, image: np.ndarray) -> BaselineOutput:
        if self.mean is None or self.basis is None:
            raise RuntimeError("fit the baseline first")
        grid = to_grid(image, self.size)
        centred = grid.ravel().astype(np.float64) - self.mean
        residual = centred - (centred @ self.basis.T) @ self.basis
        error = (residual.reshape(grid.shape) ** 2).mean(axis=2)
        return BaselineOutput(float(error.mean()), _back(error.astype(np.float32), image.shape))


Baseline = PerPixelGaussian | PcaReconstruction
