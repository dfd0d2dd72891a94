"""Image files: the one reader and the one folder listing that every entry point uses (the replay
camera here; `partsight inspect`, `evaluate`, `fit` and the engine's golden samples through
edge.images), so they all take the same formats and refuse the same files the same way.

- Formats: the suffixes in IMAGE_SUFFIXES, in any case (PNG, TIFF, BMP, JPEG, JPEG 2000, PNM),
  decoded by OpenCV as stored: uint8 or uint16, (H, W) mono or (H, W, 3) BGR, alpha dropped.
- Size: the header is read first (Pillow parses it, no pixel is decoded) and an image of more
  than `max_pixels` is refused (ImageTooLarge) before anything is decoded or even read whole.
- Failures: ImageFileError(path, one-line why), never an OpenCV or Pillow exception: a missing
  file, a folder, a broken symbolic link (named as such, with its target), an empty, truncated
  or unknown file, a pixel type other than 8/16-bit integer, memory running out.
- Listing (list_images): folders are walked recursively in sorted order of their relative paths,
  following symbolic links (a link back into a folder already walked is cut). A broken link with
  an image suffix is listed like any image, so reading it names it as an error where it stands;
  everything passed over (other suffixes, hidden files such as macOS `._x.png` copies, folders
  when not recursive) is returned in `skipped` with the reason, for the caller to name.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hw.errors import ImageFileError, ImageTooLarge

# What OpenCV decodes into 8/16-bit integer images. Left out on purpose: WebP and AVIF (always
# decoded as colour, even a grey picture), GIF (palette), float formats (EXR, HDR, PFM).
IMAGE_SUFFIXES = frozenset(
    {".png", ".tif", ".tiff", ".bmp", ".dib", ".jpg", ".jpeg", ".jpe", ".jp2"}
    | {".pgm", ".ppm", ".pnm"}
)
# 100 megapixels: above the largest area-scan industrial cameras (≈ 65 MP) with room to spare,
# yet a 16-bit colour image of this size (600 MB) still fits a Jetson's memory.
DEFAULT_MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class Listing:
    """What list_images found: the image files in order, and what it passed over, with why."""

    files: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...] = ()


def list_images(paths: Iterable[Path | str], *, recursive: bool = True) -> Listing:
    """Image files under `paths`, in the order given; each folder's files in sorted order of
    their relative paths. A path named directly is listed whatever its suffix or state (the
    caller asked for it: reading it says what is wrong with it, "no such file" included)."""
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _walk(path, recursive, files, skipped, set())
        else:
            files.append(path)
    return Listing(tuple(files), tuple(skipped))


def _walk(
    folder: Path,
    recursive: bool,
    files: list[Path],
    skipped: list[tuple[Path, str]],
    seen: set[Path],
) -> None:
    real = folder.resolve()
    if real in seen:
        skipped.append((folder, f"a symbolic link to {real}, which is listed already"))
        return
    seen.add(real)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        skipped.append((folder, f"cannot list the folder ({exc.strerror or exc})"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            skipped.append((entry, "hidden"))
        elif entry.is_dir():
            if recursive:
                _walk(entry, recursive, files, skipped, seen)
            else:
                skipped.append((entry, "a folder"))
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            files.append(entry)
        else:
            skipped.append((entry, f"not an image file (suffix {entry.suffix or 'none'!r})"))


def read_image_file(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The image as stored: uint8 or uint16, (H, W) mono or (H, W, 3) BGR.

    Raises ImageTooLarge when the header declares more than `max_pixels` pixels (nothing is
    decoded then), ImageFileError for anything else that makes the file unusable.
    """
    path = Path(path)
    _check_file(path)
    width, height = read_image_size(path)
    if width * height > max_pixels:
        raise ImageTooLarge(
            str(path),
            f"{width * height:,} pixels ({width} wide, {height} high), more than the limit "
            f"of {max_pixels:,}; refused before decoding",
        )
    try:
        data = np.fromfile(path, dtype=np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except OSError as exc:
        raise ImageFileError(str(path), f"cannot read file ({exc.strerror or exc})") from exc
    except MemoryError:
        raise ImageFileError(
            str(path), f"not enough memory to decode {width}x{height} pixels"
        ) from None
    except cv2.error as exc:
        raise ImageFileError(str(path), f"cannot be decoded ({_first_line(exc)})") from None
    if image is None:
        raise ImageFileError(str(path), "not a decodable image (corrupt or unsupported format)")
    return normalize_layout(image, str(path))


def read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header alone; ImageFileError if it has no image header
    Pillow recognises (every format in IMAGE_SUFFIXES has one)."""
    from PIL import Image, UnidentifiedImageError

    # Pillow only parses the header here; the size limit is ours (max_pixels). Its own guard
    # against decompression bombs would refuse sizes a configuration allows, without saying
    # the size, so it is switched off (Pillow's documented way).
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "possibly corrupt EXIF data": not our concern
            with Image.open(path) as header:
                width, height = header.size
    except UnidentifiedImageError:
        raise ImageFileError(
            str(path), "not a decodable image (no image header: corrupt or unsupported format)"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageFileError(str(path), f"not a decodable image ({_first_line(exc)})") from None
    if width < 1 or height < 1:
        raise ImageFileError(str(path), "image has no pixels")
    return int(width), int(height)


def normalize_layout(image: np.ndarray, source: str) -> np.ndarray:
    """Mono stays (H, W); colour becomes 3-channel BGR; alpha is dropped; anything else refused
    (ImageFileError)."""
    if image.dtype not in (np.uint8, np.uint16):
        raise ImageFileError(source, f"unsupported pixel type {image.dtype} (need 8- or 16-bit)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3):
        if min(image.shape[:2]) < 1:
            raise ImageFileError(source, "image has no pixels")
        return image
    raise ImageFileError(source, f"unsupported image shape {image.shape}")


def _check_file(path: Path) -> None:
    """ImageFileError unless `path` is a readable regular file (links followed)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            raise ImageFileError(
                str(path), f"broken symbolic link (its target {target} does not exist)"
            ) from None
        raise ImageFileError(str(path), "no such file or folder") from None
    except OSError as exc:
        raise ImageFileError(str(path), f"cannot read file ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageFileError(str(path), "a folder, not an image file")
    if not stat.S_ISREG(info.st_mode):
        raise ImageFileError(str(path), "not a regular file")
    if info.st_size == 0:
        raise ImageFileError(str(path), "empty file")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
