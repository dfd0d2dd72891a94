"""Public value types of the synthetic part generator (see :mod:`trainer.synth`).

Coordinate convention, shared with registration: pixel ``(i, j)`` has its centre at the
integer point ``x=i, y=j``; x points right, y points down. The part's reference point is
the centre of its canonical canvas, ``((W - 1) / 2, (H - 1) / 2)``. A :class:`Pose` puts
that point at ``(x, y)`` in the frame and turns the part by ``angle_deg`` counter-clockwise
as seen on screen (OpenCV's ``getRotationMatrix2D`` sign).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A defect and a nuisance on one part: a defect (its class, and the defect's mask).
MIXED_TYPES = ("defect_under_oil", "defect_with_brightness", "defect_with_dust", "defect_with_lint")
DEFECT_TYPES = (
    "scratch", "dent", "crack", "missing_hole", "chipped_edge", "foreign_material", *MIXED_TYPES,
)  # fmt: skip
NUISANCE_TYPES = ("dust", "lint", "oil_film", "brightness")
# Nuisances that touch a local region and therefore get a ground-truth mask.
LOCAL_NUISANCE_TYPES = ("dust", "lint", "oil_film")
KINDS = ("good", *DEFECT_TYPES, *NUISANCE_TYPES)

MIN_SIZE = 32


@dataclass(frozen=True)
class Pose:
    """Where the part's reference point sits in the frame, and its rotation."""

    x: float
    y: float
    angle_deg: float


@dataclass(frozen=True)
class SynthConfig:
    """What the generator renders; validated on construction (``ValueError``)."""

    size: tuple[int, int] = (128, 128)
    frame: tuple[int, int] | None = None
    random_pose: bool = False
    pose_jitter_px: float = 0.0
    pose_jitter_deg: float = 0.0
    clutter: bool = False
    occlusion_prob: float = 0.0
    bit_depth: int = 8
    color: bool = False

    def __post_init__(self) -> None:
        _check_wh("size", self.size, MIN_SIZE)
        if self.frame is not None:
            _check_wh("frame", self.frame, 1)
            if self.frame[0] < self.size[0] or self.frame[1] < self.size[1]:
                raise ValueError(
                    f"frame {self.frame} is smaller than the part's canonical view {self.size}; "
                    "the frame must be at least as large as `size` in both W and H"
                )
        for name in ("pose_jitter_px", "pose_jitter_deg"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        p = self.occlusion_prob
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"occlusion_prob must be in [0, 1], got {p!r}")
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {self.bit_depth!r}")

    @property
    def frame_size(self) -> tuple[int, int]:
        """(W, H) of the camera frame, resolving ``frame=None`` to ``size``."""
        return self.frame if self.frame is not None else self.size


def _check_wh(name: str, wh: object, minimum: int) -> None:
    ok = (
        isinstance(wh, tuple)
        and len(wh) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in wh)
    )
    if not ok:
        raise ValueError(f"{name} must be a (W, H) tuple of two ints, got {wh!r}")
    assert isinstance(wh, tuple)
    if min(wh) < minimum:
        raise ValueError(f"{name} {wh} is too small: both W and H must be >= {minimum}")


@dataclass
class Sample:
    """One rendered frame with its ground truth."""

    image: np.ndarray
    mask: np.ndarray
    pose: Pose
    cls: str
    type: str
    occluded: bool = False


def class_of(kind: str) -> str:
    """``good`` | ``defect`` | ``nuisance`` for a kind name (``ValueError`` if unknown)."""
    if kind == "good":
        return "good"
    if kind in DEFECT_TYPES:
        return "defect"
    if kind in NUISANCE_TYPES:
        return "nuisance"
    raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def canvas_centre(size: tuple[int, int]) -> tuple[float, float]:
    """The reference point of a canonical canvas of ``size`` = (W, H)."""
    return (size[0] - 1) / 2.0, (size[1] - 1) / 2.0


def pose_matrix(pose: Pose, size: tuple[int, int]) -> np.ndarray:
    """2x3 affine mapping canonical-canvas pixel coords to frame coords (``cv2.warpAffine``)."""
    cx, cy = canvas_centre(size)
    a = math.radians(pose.angle_deg)
    c, s = math.cos(a), math.sin(a)
    # CCW on screen with y down: (1, 0) turns towards (0, -1).
    return np.array(
        [[c, s, pose.x - (c * cx + s * cy)], [-s, c, pose.y - (-s * cx + c * cy)]],
        dtype=np.float64,
    )
