"""Frame checks, grey conversion, the image pyramid and the template's foreground mask."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from edge.registration.errors import RegistrationError

log = logging.getLogger(__name__)

# uint16 frames are brought to the uint8 intensity scale so that gradient thresholds learnt
# on one depth hold on the other.
_U16_TO_U8 = 1.0 / 257.0


def check_image(image: object, what: str = "frame") -> np.ndarray:
    """Return ``image`` as an ndarray if registration can use it, else raise RegistrationError."""
    if not isinstance(image, np.ndarray):
        raise RegistrationError(f"{what}: expected a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise RegistrationError(f"{what}: dtype {image.dtype} is not uint8 or uint16")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise RegistrationError(f"{what}: shape {image.shape} is not (h, w) or (h, w, 1|3|4)")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise RegistrationError(f"{what}: shape {image.shape} is empty or too small (< 8 px)")
    return image


def to_grey(image: np.ndarray) -> np.ndarray:
    """Grey image on the uint8 intensity scale: uint8 stays uint8 (cheap), uint16 -> float32."""
    grey = image
    if grey.ndim == 3:
        if grey.shape[2] == 1:
            grey = grey[:, :, 0]
        else:
            code = cv2.COLOR_BGR2GRAY if grey.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
            grey = cv2.cvtColor(grey, code)
    if grey.dtype == np.uint16:
        return grey.astype(np.float32) * np.float32(_U16_TO_U8)
    return np.ascontiguousarray(grey)


def pyramid(grey: np.ndarray, levels: int) -> list[np.ndarray]:
    """``[level 0, ..., level levels]`` by cv2.pyrDown: pixel i of level l is pixel 2**l * i of
    level 0, so coordinates scale by exactly 2**l (no half-pixel shift)."""
    out = [grey]
    for _ in range(levels):
        prev = out[-1]
        if min(prev.shape[:2]) < 4:
            break
        out.append(cv2.pyrDown(prev))
    return out


def foreground_mask(grey: np.ndarray) -> np.ndarray:
    """Part silhouette (255 = material): Otsu, polarity from the border, open/close, the largest
    component, holes filled."""
    img8 = grey if grey.dtype == np.uint8 else np.clip(grey, 0, 255).astype(np.uint8)
    h, w = img8.shape
    blurred = cv2.GaussianBlur(img8, (5, 5), 0)
    _, binary = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    border = np.concatenate([binary[0], binary[-1], binary[:, 0], binary[:, -1]])
    if np.count_nonzero(border) > border.size // 2:  # the border is mostly background
        binary = cv2.bitwise_not(binary)
    k = max(3, (min(h, w) // 64) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        log.warning("foreground mask: no part found by Otsu, using the whole template window")
        return np.full((h, w), 255, np.uint8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    part = np.where(labels == largest, 255, 0).astype(np.uint8)
    # Fill holes: whatever background the border cannot reach belongs to the part.
    outside = np.full((h + 2, w + 2), 255, np.uint8)
    outside[1:-1, 1:-1] = 255 - part
    cv2.floodFill(outside, None, (0, 0), 128)
    return np.where(outside[1:-1, 1:-1] == 128, 0, 255).astype(np.uint8)
