"""Camera pixel formats and the conversion of a camera buffer into the image layout PartSight
uses everywhere: uint8 or uint16, (H, W) mono or (H, W, 3) BGR.

10- and 12-bit mono values are shifted up to fill 16 bits (MSB-aligned): the pipeline scales
uint16 by 65535, so a raw Mono12 image (0..4095) would otherwise look almost black.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Channels = Literal["mono", "bgr", "rgb"]


@dataclass(frozen=True)
class PixelFormat:
    name: str  # as configured (SFNC name)
    bits: int  # significant bits per channel
    channels: Channels
    camera_names: tuple[str, ...]  # what cameras call it: SFNC first, then older Basler names


def _fmt(name: str, bits: int, channels: Channels, *aliases: str) -> PixelFormat:
    return PixelFormat(name, bits, channels, (name, *aliases))


# Bayer formats are left out on purpose: set the camera to BGR8 and let it debayer.
PIXEL_FORMATS: dict[str, PixelFormat] = {
    f.name: f
    for f in (
        _fmt("Mono8", 8, "mono"),
        _fmt("Mono10", 10, "mono"),
        _fmt("Mono10p", 10, "mono", "Mono10Packed"),
        _fmt("Mono12", 12, "mono"),
        _fmt("Mono12p", 12, "mono", "Mono12Packed"),
        _fmt("Mono16", 16, "mono"),
        _fmt("BGR8", 8, "bgr", "BGR8Packed"),
        _fmt("RGB8", 8, "rgb", "RGB8Packed"),
    )
}


def pixel_format(name: str) -> PixelFormat:
    """The format of this name; KeyError if PartSight does not support it."""
    return PIXEL_FORMATS[name]


def to_image(buffer: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """The buffer as a PartSight image; ValueError if its layout does not match the format.

    The result never shares memory with `buffer` when a conversion is needed; when none is
    (Mono8, Mono16, BGR8) it is `buffer` itself, made C-contiguous.
    """
    want_dtype = np.uint8 if fmt.bits == 8 else np.uint16
    want_ndim = 2 if fmt.channels == "mono" else 3
    if buffer.dtype != want_dtype or buffer.ndim != want_ndim:
        raise ValueError(
            f"buffer is {buffer.dtype} {buffer.shape}, expected {np.dtype(want_dtype)} "
            f"{'(H, W)' if want_ndim == 2 else '(H, W, 3)'} for {fmt.name}"
        )
    if want_ndim == 3 and buffer.shape[2] != 3:
        raise ValueError(f"buffer has {buffer.shape[2]} channels, expected 3 for {fmt.name}")
    if fmt.channels == "rgb":
        return np.ascontiguousarray(buffer[:, :, ::-1])
    if fmt.bits in (10, 12):
        return np.left_shift(buffer, 16 - fmt.bits)
    return np.ascontiguousarray(buffer)
