"""Reading images from disk, strictly: 8- or 16-bit, mono or colour, or a clear ImageError."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".ppm"})


def quiet_opencv() -> None:
    """Stop OpenCV printing its own warnings for undecodable files: read_image reports each one
    as a single ImageError naming the file, and a second, vaguer line only confuses."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def read_image(path: Path | str) -> np.ndarray:
    """The image as stored: uint8 or uint16, (H, W) mono or (H, W, 3) BGR."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ImageError(str(path), f"cannot read file ({exc.strerror})") from exc
    if data.size == 0:
        raise ImageError(str(path), "empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(str(path), "not a decodable image (corrupt or unsupported format)")
    return normalize_layout(image, str(path))


def normalize_layout(image: np.ndarray, source: str) -> np.ndarray:
    """Mono stays (H, W); colour becomes 3-channel BGR; alpha is dropped; anything else refused."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageError(source, f"unsupported pixel type {image.dtype} (need 8- or 16-bit)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
        if min(image.shape[:2]) < 1:
            raise ImageError(source, "image has no pixels")
        return image
    raise ImageError(source, f"unsupported image shape {image.shape}")


def find_images(paths: Iterable[Path | str]) -> list[Path]:
    """Files named directly, plus image files found recursively under folders, sorted per folder."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise ImageError(str(path), "no such file or folder")
    return found
