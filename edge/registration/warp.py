"""Cutting the template window out of a frame at a registered pose."""

from __future__ import annotations

import cv2
import numpy as np

from edge.registration.pose import Pose, template_to_frame


def warp_to_template(
    frame: np.ndarray, pose: Pose, ref: tuple[float, float], size: tuple[int, int]
) -> np.ndarray:
    """The frame resampled (bilinear) into the template's window: pixel p of the result is the
    frame at ``template_to_frame(pose) @ p``. Same dtype and channels as the frame; outside
    the frame is 0."""
    m = template_to_frame(pose, ref)
    out = cv2.warpAffine(
        frame,
        m,
        size,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if frame.ndim == 3 and out.ndim == 2:  # OpenCV drops a single channel axis
        out = out[:, :, None]
    return out
