"""Reading an image file into PartSight's layout, for the replay camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REPLAY_SUFFIXES = frozenset({".png", ".bmp", ".tif", ".tiff"})


def find_image_files(folder: Path) -> list[Path]:
    """Image files under folder, recursively, in sorted order of their relative paths."""
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in REPLAY_SUFFIXES]
    return sorted(files, key=lambda p: p.relative_to(folder).parts)


def read_image_file(path: Path) -> np.ndarray:
    """uint8/uint16, (H, W) mono or (H, W, 3) BGR; ValueError saying why if it cannot be."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"cannot read file ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ValueError("empty file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("not a decodable image (corrupt or unsupported)")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported pixel type {image.dtype} (need 8 or 16 bits)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
        return image
    raise ValueError(f"unsupported image shape {image.shape}")
