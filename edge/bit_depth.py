"""Bit depth: how many bits of a pixel carry its value, and bringing every image to one scale.

Cameras deliver 10- and 12-bit formats MSB-aligned in 16 bits (hw.camera.pixels: Mono12 value v
arrives as v << 4), so a uint16 frame from a camera is on the full 16-bit scale. Image files
usually hold such data LSB-aligned in a 16-bit container (a Mono12 image saved by a frame
grabber holds 0..4095). PartSight judges every image on the full scale: the values of an N-bit
image are shifted up by 16 - N bits, exactly as the camera adapter shifts them, so the same
pixels give the same model input, and the same score, from a file and from the camera.

The engine records the depth it was trained on (manifest `input.bit_depth`). An image whose
depth is not known (any image file) is taken to have that depth, and is refused if one of its
values does not fit in it; an image of a known other depth (a Mono8 or Mono12 camera on an engine
trained on 16-bit files) is converted, since both sit on the same full scale. A 16-bit image
file whose values all stay below 4096 on an engine trained on 8-bit images is refused, with the
likely cause (10- or 12-bit data saved LSB-aligned): read as 16-bit data it is near black, and
judging it would only say "anomaly" without saying why.
"""

from __future__ import annotations

import numpy as np

from edge.errors import ImageError

BIT_DEPTHS = (8, 10, 12, 14, 16)  # 8 for uint8 images; the others for 16-bit containers


def bits_for_peak(peak: int) -> int:
    """The smallest depth of a 16-bit container (10, 12, 14 or 16) that holds `peak`."""
    return next((bits for bits in BIT_DEPTHS[1:] if peak < 1 << bits), 16)


def stored_bits(image: np.ndarray, known: int | None, engine_bits: int) -> int:
    """The depth `image`'s values have: 8 for uint8; `known` when the source says (a camera);
    otherwise the depth the engine was trained on (16 if it was trained on 8-bit images)."""
    if image.dtype == np.uint8:
        return 8
    if known is not None:
        return known
    return engine_bits if engine_bits > 8 else 16


def refuse_narrow_file(image: np.ndarray, known: int | None, engine_bits: int, source: str) -> None:
    """ImageError, naming `source`, for a 16-bit image from a file (`known` None) whose values
    stay below 4096, on an engine trained on 8-bit images (module docstring)."""
    if image.dtype != np.uint16 or known is not None or engine_bits != 8:
        return
    peak = int(image.max())
    if peak < 1 << 12:
        raise ImageError(
            source,
            f"a 16-bit image whose values stay below 4096 (peak {peak}: {bits_for_peak(peak)}-bit "
            "data?) on an engine trained on 8-bit images: as 16-bit data it is near black; save "
            "it as 8 bits, or fit an engine on such files",
        )


def to_full_scale(image: np.ndarray, bits: int, source: str) -> np.ndarray:
    """`image` with its `bits`-bit values shifted up to fill 16 bits (uint16 in, uint16 out; a
    uint8 image or 16-bit data is returned as is). ImageError, naming `source`, if a value does
    not fit in `bits` bits: the image is not the data the engine was trained on."""
    if image.dtype == np.uint8 or bits >= 16:
        return image
    top = (1 << bits) - 1
    peak = int(image.max())
    if peak > top:
        raise ImageError(
            source,
            f"values reach {peak}, more than {bits}-bit data holds (0..{top}), "
            f"the depth the engine was trained on",
        )
    return np.left_shift(image, 16 - bits)
