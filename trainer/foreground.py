"""An automatic foreground mask for pose-aligned parts: where the mean good image is part, not
conveyor. Background clutter then never scores. (With registration, the template's mask is used.)"""

from __future__ import annotations

import cv2
import numpy as np

from trainer.errors import TrainerError

MIN_COVER, MAX_COVER = 0.02, 0.98


def stretch_to_uint8(image: np.ndarray) -> np.ndarray:
    """Any-range grey image linearly stretched to 0..255, for Otsu."""
    low, high = float(image.min()), float(image.max())
    return ((image - low) * (255.0 / max(high - low, 1e-12))).astype(np.uint8)


def auto_foreground(inputs: np.ndarray, grow_px: int = 3) -> np.ndarray:
    """uint8 (H, W) mask, 255 on the part, from float (N, C, H, W) aligned good images.

    Otsu on the mean image splits part from background; holes inside the silhouette are filled
    (a missing hole must still be judged) and the outline is grown by grow_px so a chipped or
    bent edge stays inside the judged area.
    """
    mean = inputs.mean(axis=(0, 1))
    gray = stretch_to_uint8(mean)
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        raise TrainerError("automatic mask: no part found in the mean training image")
    mask = np.zeros_like(binary)
    cv2.drawContours(mask, [max(contours, key=cv2.contourArea)], -1, 255, thickness=cv2.FILLED)
    if grow_px:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow_px + 1,) * 2)
        mask = cv2.dilate(mask, kernel)
    cover = float(np.count_nonzero(mask)) / mask.size
    if not MIN_COVER <= cover <= MAX_COVER:
        raise TrainerError(
            f"automatic mask covers {cover:.0%} of the image: the images do not show one aligned "
            "part on a distinct background (use --mask none)"
        )
    return mask
