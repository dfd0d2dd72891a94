"""What `fit` checks about its training images before it trains: each problem is one clear line
(DatasetError) instead of a torch traceback after training, or an engine that cannot work.

- Bit depth: what the values say (8-bit images; 16-bit ones whose values never exceed 1023,
  4095 or 16383 hold 10-, 12- or 14-bit data), or the depth asked for, checked.
- Size: the model input must be at least the network's stride (2**depth) and larger than the
  smoothing kernel's radius on both sides.
- Variation: images that are all identical (a static scene, a camera stuck on one frame) give
  the model nothing to learn and the threshold nothing to measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge.bit_depth import BIT_DEPTHS, bits_for_peak
from trainer.errors import DatasetError
from trainer.model import DAEConfig, gaussian_kernel


@dataclass(frozen=True)
class BitDepth:
    bits: int  # one of edge.bit_depth.BIT_DEPTHS
    note: str  # what was found, for the person running fit


def detect_bit_depth(images: Sequence[np.ndarray], requested: int | None, where: str) -> BitDepth:
    """The depth of `images` (all uint8 or all uint16): from their largest value, or
    `requested` (checked: DatasetError if a value does not fit, or for 8-bit images asked to
    be anything but 8)."""
    peak = max(int(im.max()) for im in images)
    if images[0].dtype == np.uint8:
        if requested not in (None, 8):
            raise DatasetError(f"{where}: 8-bit images cannot hold {requested}-bit data")
        return BitDepth(8, "8-bit images")
    if requested is not None:
        if requested not in BIT_DEPTHS[1:]:
            raise DatasetError(f"{where}: bit depth {requested} is not one of {BIT_DEPTHS[1:]}")
        if peak >= 1 << requested:
            raise DatasetError(
                f"{where}: values reach {peak}, more than {requested}-bit data holds "
                f"(0..{(1 << requested) - 1})"
            )
        return BitDepth(requested, f"{requested}-bit data in 16-bit images (as asked)")
    bits = bits_for_peak(peak)
    if bits == 16:
        return BitDepth(16, f"values reach {peak}: 16-bit data")
    return BitDepth(bits, f"values never exceed {(1 << bits) - 1}: {bits}-bit data")


def check_input_size(
    height: int, width: int, model: DAEConfig, smoothing_sigma: float, where: str
) -> None:
    """DatasetError unless a (height, width) model input fits the network and the map's
    smoothing (each needs the input to be at least as large as itself)."""
    if min(height, width) < model.stride:
        raise DatasetError(
            f"{where}: images are {height}x{width} (HxW), smaller than the network's stride "
            f"({model.stride} px at depth {model.depth}); use larger images, --size, or a "
            "smaller --depth"
        )
    radius = gaussian_kernel(smoothing_sigma).shape[-1] // 2 if smoothing_sigma > 0 else 0
    if radius >= min(height, width):
        raise DatasetError(
            f"{where}: images are {height}x{width} (HxW), not larger than the smoothing kernel's "
            f"radius ({radius} px at --smoothing {smoothing_sigma:g}); use a smaller --smoothing"
        )


def check_variation(images: Sequence[np.ndarray], where: str) -> None:
    """DatasetError if every image equals the first."""
    first = images[0]
    if all(np.array_equal(first, im) for im in images[1:]):
        raise DatasetError(
            f"{where}: all {len(images)} training images are identical: the training set has no "
            "variation to learn (a static scene, or a camera stuck on one frame?)"
        )
