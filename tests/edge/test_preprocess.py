import re

import numpy as np
import pytest

from edge.errors import ImageError
from edge.manifest import InputSpec
from edge.preprocess import check_image, to_model_input

SPEC = InputSpec(channels=1, height=4, width=6, source_height=8, source_width=12)


def test_scales_by_bit_depth_and_resizes() -> None:
    eight = np.full((8, 12), 255, np.uint8)
    sixteen = np.full((8, 12), 65535 // 2, np.uint16)
    assert to_model_input(eight, SPEC).shape == (1, 4, 6)
    assert np.allclose(to_model_input(eight, SPEC), 1.0)
    assert np.allclose(to_model_input(sixteen, SPEC), 0.5, atol=1e-4)


def test_colour_becomes_channels_first() -> None:
    spec = InputSpec(channels=3, height=8, width=12, source_height=8, source_width=12)
    image = np.zeros((8, 12, 3), np.uint8)
    image[..., 1] = 255
    out = to_model_input(image, spec)
    assert out.shape == (3, 8, 12) and out[1].min() == 1.0 and out[0].max() == 0.0


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 13), np.uint8), "wrong size 8x13 (HxW)"),
        (np.zeros((8, 12, 3), np.uint8), "3 channel"),
        (np.zeros((8, 12), np.float32), "pixel type"),
    ],
)
def test_refuses_frames_the_engine_was_not_built_for(image: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=re.escape(message)):
        check_image(image, SPEC, "cam0")
