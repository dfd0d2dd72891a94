"""Registration at train time: the same Template and Registrar the line uses (edge.registration),
so the model learns on exactly the crops it will be shown."""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.registration import Registrar, Template
from edge.registration.image import to_grey
from trainer.errors import DatasetError
from trainer.foreground import stretch_to_uint8
from trainer.progress import progress_bar

log = logging.getLogger(__name__)

MAX_UNREGISTERED = 0.1  # more failures than this in good training images means a bad template
ALIGNED_ANGLE_RANGE = (-15.0, 15.0)  # frames that are already crops only wobble a little


@dataclass(frozen=True)
class Aligned:
    template: Template
    registrar: Registrar
    crops: list[np.ndarray]
    kept: list[int]  # indices of the training images that registered
    poses: list[tuple[float, float, float]]  # (x px, y px, angle °) of each kept image
    confidences: list[float]  # and its registration confidence


def poses_vary(root: Path) -> bool:
    """True when labels.csv records more than one pose: there are poses to undo."""
    path = root / "labels.csv"
    if not path.is_file():
        return False
    with path.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("angle_deg") not in (None, "")]
    poses = {(r.get("x"), r.get("y"), r.get("angle_deg")) for r in rows}
    return len(poses) > 1


def reference_view(frame: np.ndarray, margin: float = 1.1) -> np.ndarray:
    """The part as it lies in `frame`, cut out centred on its silhouette: the template's window.

    The part is the largest bright blob (Otsu); the window is a square around its centroid that
    holds the whole silhouette at any rotation, `margin` times its radius.
    """
    grey = to_grey(frame)
    grey8 = stretch_to_uint8(grey)
    _, binary = cv2.threshold(grey8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise DatasetError("registration: no part found in the reference image")
    outline = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float64)
    moments = cv2.moments(max(contours, key=cv2.contourArea))
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    radius = float(np.max(np.hypot(outline[:, 0] - cx, outline[:, 1] - cy)))
    side = 2 * math.ceil(radius * margin) + 1
    centre = (side - 1) / 2.0
    shift = np.array([[1.0, 0.0, centre - cx], [0.0, 1.0, centre - cy]])
    return cv2.warpAffine(
        frame, shift, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def align_training_set(
    frames: list[np.ndarray], device: str, min_confidence: float, show_progress: bool
) -> Aligned:
    """Build the template from the first frame and register every frame to it."""
    reference = reference_view(frames[0])
    already_crops = reference.shape[0] >= min(frames[0].shape[:2])
    if already_crops:  # the frames are the part's window already: register within it
        reference = frames[0]
    template = Template.build(
        reference, angle_range=ALIGNED_ANGLE_RANGE if already_crops else (0.0, 360.0)
    )
    registrar = Registrar(template, device=device, min_confidence=min_confidence)
    crops, kept, poses, confidences = [], [], [], []
    bar = progress_bar(len(frames), "registering", "image", enabled=show_progress)
    for index, frame in enumerate(frames):
        registration = registrar.register(frame)
        bar.update(1)
        if registration.accepted and registration.aligned is not None:
            crops.append(registration.aligned)
            kept.append(index)
            pose = registration.pose
            poses.append((pose.x, pose.y, pose.angle_deg))
            confidences.append(registration.confidence)
        else:
            log.warning("training image %d not registered (confidence %.2f): left out",
                        index, registration.confidence)  # fmt: skip
    bar.close()
    dropped = len(frames) - len(kept)
    if dropped > MAX_UNREGISTERED * len(frames):
        raise DatasetError(
            f"registration failed on {dropped} of {len(frames)} good training images: the "
            "reference (the first image) may be atypical, or the data is pre-aligned "
            "(use --register off)"
        )
    return Aligned(
        template=template,
        registrar=registrar,
        crops=crops,
        kept=kept,
        poses=poses,
        confidences=confidences,
    )
