"""Pose and Registration results, and the one place that turns a pose into an affine matrix.

Convention (shared with the synthetic part generator and checked by the tests):

* Coordinates are pixel-centre coordinates: pixel (col i, row j) is the point (x=i, y=j),
  y grows downwards.
* The template's reference point is the centre of its crop window,
  ``((w - 1) / 2, (h - 1) / 2)`` for a ``w x h`` template.
* ``Pose(x, y, angle_deg, scale)`` says: the reference point lands at ``(x, y)`` in the frame,
  and the template is rotated about it by ``angle_deg`` counter-clockwise *as seen on screen*
  (y down) and scaled by ``scale``. A template point ``p`` goes to
  ``(x, y) + scale * R(angle) @ (p - ref)`` with ``R(a) = [[cos a, sin a], [-sin a, cos a]]``,
  which is exactly what ``cv2.getRotationMatrix2D`` produces for a positive angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Where the template's reference point sits in the frame (see the module docstring)."""

    x: float
    y: float
    angle_deg: float
    scale: float = 1.0


@dataclass(frozen=True, eq=False)
class Registration:
    """One frame registered to the template.

    ``confidence``: the fraction of the template's edge points the frame confirms at ``pose``
    (about 1 for a clean match, about 0 for no part, ~0.2-0.35 for a different part); a part
    whose material leaves the frame is penalised on top (see ``Registrar``). ``aligned``: the
    frame warped into the template window (same dtype and channels as the frame); None when
    the caller asked for the pose only (``register(frame, warp=False)``: the GPU path cuts the
    crop on the device). ``mask``:
    the template's foreground, uint8 (h, w), 255 = material, read-only and shared.
    ``accepted``: ``confidence >= min_confidence`` of the Registrar that produced it.
    ``in_view``: the fraction of the part's outline inside the frame at ``pose``.
    """

    pose: Pose
    confidence: float
    aligned: np.ndarray | None
    mask: np.ndarray
    accepted: bool = True
    in_view: float = 1.0


def rotation(angle_deg: float, scale: float = 1.0) -> np.ndarray:
    """The 2x2 matrix ``scale * R(angle)`` of the module's convention."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    return np.array([[c, s], [-s, c]], dtype=np.float64)


def template_to_frame(pose: Pose, ref: tuple[float, float]) -> np.ndarray:
    """2x3 affine matrix mapping template coordinates to frame coordinates."""
    a = rotation(pose.angle_deg, pose.scale)
    t = np.array([pose.x, pose.y]) - a @ np.asarray(ref, dtype=np.float64)
    return np.hstack([a, t[:, None]])


def wrap_angle(angle_deg: float) -> float:
    """Angle folded into [-180, 180)."""
    return (angle_deg + 180.0) % 360.0 - 180.0
