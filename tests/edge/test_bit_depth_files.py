"""edge.bit_depth.refuse_narrow_file: 10- and 12-bit data in a 16-bit file on an engine trained
on 8-bit images is refused with the likely depth; what it cannot tell from a dim 16-bit image,
and what a camera or a deeper engine handles, passes on."""

from __future__ import annotations

import numpy as np
import pytest

from edge.bit_depth import refuse_narrow_file
from edge.errors import ImageError


def image(peak: int) -> np.ndarray:
    return np.linspace(0, peak, 64, dtype=np.uint16).reshape(8, 8)


@pytest.mark.parametrize(("peak", "bits"), [(1000, 10), (4000, 12)])
def test_10_and_12_bit_files_on_an_8_bit_engine_are_refused_naming_the_depth(
    peak: int, bits: int
) -> None:
    with pytest.raises(ImageError, match=rf"peak {peak}: {bits}-bit data\?"):
        refuse_narrow_file(image(peak), None, 8, "part.png")


@pytest.mark.parametrize(
    ("peak", "known", "engine_bits"),
    [
        (60000, None, 8),  # 16-bit data: judged as such
        (10000, None, 8),  # 14-bit data or a dim 16-bit image: cannot tell, judged as 16-bit
        (4000, 12, 8),  # a Mono12 camera says its depth: converted, not refused
        (4000, None, 12),  # an engine trained on 12-bit files reads it as 12-bit
    ],
)
def test_what_it_cannot_tell_or_others_handle_passes_on(
    peak: int, known: int | None, engine_bits: int
) -> None:
    refuse_narrow_file(image(peak), known, engine_bits, "part.png")


def test_an_8_bit_image_is_never_refused() -> None:
    refuse_narrow_file(np.full((8, 8), 200, np.uint8), None, 8, "part.png")
