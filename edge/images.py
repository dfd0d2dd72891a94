"""Reading images from disk for the edge runtime and the trainer: hw.camera.image_file's one reader
and one listing (the replay camera uses the same), with its errors as edge ImageErrors.

8- or 16-bit, mono or colour, suffixes in any case, the size checked from the header before
decoding (`max_pixels`), or a clear one-line ImageError naming the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError
from hw.camera.image_file import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    Listing,
    list_images,
    read_image_file,
)
from hw.errors import ImageFileError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "Listing",
    "find_images",
    "quiet_opencv",
    "read_image",
]


def quiet_opencv() -> None:
    """Stop OpenCV printing its own warnings for undecodable files: read_image reports each one
    as a single ImageError naming the file, and a second, vaguer line only confuses."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def read_image(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as stored: uint8 or uint16, (H, W) mono or (H, W, 3) BGR. ImageError (naming
    the file) if it cannot be read, or if its header declares more than `max_pixels` pixels."""
    try:
        return read_image_file(path, max_pixels)
    except ImageFileError as exc:
        raise ImageError(exc.path, exc.why) from exc


def find_images(paths: Iterable[Path | str], *, recursive: bool = True) -> Listing:
    """Files named directly, plus the image files under folders (recursively unless told
    otherwise), in order; what was passed over is in `skipped`, with why."""
    return list_images(paths, recursive=recursive)
