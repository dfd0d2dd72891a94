"""From a stored image to the model's input tensor. The trainer uses this same code, so train time
and run time see identical pixels."""

from __future__ import annotations

import cv2
import numpy as np

from edge.errors import ImageError
from edge.manifest import InputSpec

_DTYPE_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def check_image(image: np.ndarray, spec: InputSpec, source: str) -> None:
    """Refuse a frame the engine was not built for: wrong size, channels or pixel type."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ImageError(source, f"unsupported frame shape {image.shape}")
    if image.dtype not in _DTYPE_MAX:
        raise ImageError(source, f"unsupported pixel type {image.dtype} (need 8- or 16-bit)")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels != spec.channels:
        raise ImageError(source, f"has {channels} channel(s), the engine expects {spec.channels}")
    height, width = image.shape[:2]
    if spec.takes(height, width):
        return
    if spec.geometry == "resized":
        low = spec.min_source_side or 1
        raise ImageError(
            source,
            f"size {height}x{width} (HxW) is outside the sizes this engine judges "
            f"(height {low}..{spec.source_height}, width {low}..{spec.source_width} px)",
        )
    raise ImageError(
        source,
        f"wrong size {height}x{width} (HxW), "
        f"the engine expects {spec.source_height}x{spec.source_width}",
    )


def to_model_input(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """float32 (C, H, W) in [0, 1], resized to the model's input size (OpenCV INTER_AREA). The
    caller has checked the frame (check_image); with registration `image` is the aligned crop,
    not the frame."""
    scaled: np.ndarray = image.astype(np.float32) / _DTYPE_MAX[image.dtype]
    if scaled.shape[:2] != (spec.height, spec.width):
        scaled = cv2.resize(scaled, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    if scaled.ndim == 2:
        return scaled[None]
    return np.ascontiguousarray(scaled.transpose(2, 0, 1))
