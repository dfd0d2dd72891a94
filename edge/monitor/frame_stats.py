"""Brightness, contrast and focus of a camera frame: the one function the trainer (for the
good-part baseline in the engine's manifest) and the line (for every frame) both call.

- brightness: mean grey level μ, as a fraction of full scale (0..1, 8- and 16-bit alike);
- contrast: RMS contrast, the grey level's standard deviation over its mean, σ/μ (Peli,
  "Contrast in complex images", JOSA A 7(10), 1990);
- focus: variance of the Laplacian (Pech-Pacheco et al., "Diatom autofocusing in brightfield
  microscopy: a comparative study", ICPR 2000; OpenCV's 3×3 kernel [[0, 1, 0], [1, −4, 1],
  [0, 1, 0]]) over μ².

Contrast and focus are divided by the brightness so that the three measure different things:
a lamp that dims (a gain on every pixel) moves the brightness alone; a dirty or fogged lens, or
a part out of the depth of field, lowers the focus; glare or a changed background moves the
contrast. A black frame (μ < 1e-6) has contrast and focus 0.

Frames larger than MAX_SIDE pixels along a side are subsampled by an integer stride first (no
smoothing, so the Laplacian still sees the finest detail that remains): about 1 ms for a
1024×1024 mono frame on one laptop-class CPU core. The stride depends only on the frame size,
so the trainer and the line, which see frames of the same size, compute the same statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MAX_SIDE = 512
_BLACK = 1e-6


@dataclass(frozen=True)
class FrameStats:
    brightness: float  # mean grey μ, fraction of full scale
    contrast: float  # grey standard deviation / μ
    focus: float  # variance of the Laplacian / μ²

    def as_dict(self) -> dict[str, float]:
        return {
            "brightness": round(self.brightness, 6),
            "contrast": round(self.contrast, 6),
            "focus": float(f"{self.focus:.6g}"),
        }


def frame_stats(image: np.ndarray) -> FrameStats:
    """The statistics of one frame: uint8 or uint16, (H, W) mono or (H, W, 3) BGR.

    Raises ValueError for any other dtype or shape (the camera layer never delivers one)."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"frame statistics need uint8 or uint16 pixels, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or 0 in image.shape:
        raise ValueError(f"frame statistics need (H, W) or (H, W, 3), got {image.shape}")
    stride = max(1, math.ceil(max(image.shape[:2]) / MAX_SIDE))
    view = image[::stride, ::stride]
    grey = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY) if view.ndim == 3 else view
    full_scale = 255.0 if image.dtype == np.uint8 else 65535.0
    grey = grey.astype(np.float32) * np.float32(1.0 / full_scale)
    mean_, std_ = cv2.meanStdDev(grey)
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F))
    mean = float(mean_[0, 0])
    if mean < _BLACK:
        return FrameStats(brightness=mean, contrast=0.0, focus=0.0)
    return FrameStats(
        brightness=mean,
        contrast=float(std_[0, 0]) / mean,
        focus=(float(lap_std[0, 0]) / mean) ** 2,
    )
