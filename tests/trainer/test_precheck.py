"""fit's pre-checks: bit depth found from the values, sizes the network cannot take, training
sets without variation; each a one-line DatasetError before any training."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.errors import DatasetError
from trainer.model import DAEConfig
from trainer.precheck import check_input_size, check_variation, detect_bit_depth


def _u16(peak: int) -> list[np.ndarray]:
    return [np.array([[0, peak // 2]], np.uint16), np.array([[peak, 7]], np.uint16)]


@pytest.mark.parametrize(
    ("peak", "bits", "note"),
    [
        (4095, 12, "values never exceed 4095: 12-bit data"),
        (3000, 12, "values never exceed 4095: 12-bit data"),
        (1023, 10, "values never exceed 1023: 10-bit data"),
        (16383, 14, "values never exceed 16383: 14-bit data"),
        (4096, 14, "values never exceed 16383: 14-bit data"),
        (65535, 16, "values reach 65535: 16-bit data"),
    ],
)
def test_the_bit_depth_is_found_from_the_values(peak: int, bits: int, note: str) -> None:
    """Field input 1: `fit` says what it found."""
    depth = detect_bit_depth(_u16(peak), None, "d")
    assert (depth.bits, depth.note) == (bits, note)


def test_eight_bit_images_and_an_asked_depth() -> None:
    eight = [np.array([[0, 255]], np.uint8)]
    assert detect_bit_depth(eight, None, "d").note == "8-bit images"
    assert detect_bit_depth(_u16(1000), 12, "d").note == "12-bit data in 16-bit images (as asked)"
    with pytest.raises(DatasetError, match=r"^d: values reach 5000, more than 12-bit data holds"):
        detect_bit_depth(_u16(5000), 12, "d")
    with pytest.raises(DatasetError, match=r"^d: 8-bit images cannot hold 12-bit data$"):
        detect_bit_depth(eight, 12, "d")


def test_images_smaller_than_the_stride_are_refused() -> None:
    """Field input 7: 7x3 images used to train, then die in torch's padding."""
    with pytest.raises(DatasetError) as info:
        check_input_size(3, 7, DAEConfig(depth=4), 4.0, "data/train/good")
    assert str(info.value) == (
        "data/train/good: images are 3x7 (HxW), smaller than the network's stride (16 px at "
        "depth 4); use larger images, --size, or a smaller --depth"
    )
    check_input_size(16, 16, DAEConfig(depth=4), 4.0, "d")  # exactly the stride is fine


def test_images_not_larger_than_the_smoothing_radius_are_refused() -> None:
    with pytest.raises(DatasetError) as info:
        check_input_size(24, 40, DAEConfig(depth=3), 8.0, "d")
    assert str(info.value) == (
        "d: images are 24x40 (HxW), not larger than the smoothing kernel's radius (24 px at "
        "--smoothing 8); use a smaller --smoothing"
    )
    check_input_size(25, 40, DAEConfig(depth=3), 8.0, "d")
    check_input_size(8, 8, DAEConfig(depth=3), 0.0, "d")  # no smoothing, no radius


def test_identical_images_are_refused_and_one_difference_is_enough() -> None:
    """Field input 6: twenty identical training images."""
    image = np.random.default_rng(0).integers(0, 255, (8, 8), np.uint8)
    with pytest.raises(DatasetError) as info:
        check_variation([image] * 20, "d")
    assert str(info.value) == (
        "d: all 20 training images are identical: the training set has no variation to learn "
        "(a static scene, or a camera stuck on one frame?)"
    )
    other = image.copy()
    other[0, 0] ^= 1
    check_variation([image] * 19 + [other], "d")
