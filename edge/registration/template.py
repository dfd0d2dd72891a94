"""The registration template: edge models of a good, aligned reference image, built once at
train time and stored in the engine bundle.

Stored as ``ght_template.json`` (parameters), ``ght_mask.png`` (foreground), one
``ght_level<l>.npy`` per pyramid level (coarse voting models) and ``ght_fine.npy`` (sub-pixel
points for the final refinement); arrays are plain float64, saved without pickle.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.registration.edges import N_ORI, edge_points, gradients
from edge.registration.errors import RegistrationError, TemplateError
from edge.registration.image import check_image, foreground_mask, pyramid, to_grey
from edge.registration.refine import FinePoints, localise, smooth

log = logging.getLogger(__name__)

FORMAT = "partsight-ght-template"
VERSION = 1
JSON_FILE = "ght_template.json"
MASK_FILE = "ght_mask.png"
FINE_FILE = "ght_fine.npy"


def _level_file(level: int) -> str:
    return f"ght_level{level}.npy"


@dataclass(frozen=True, eq=False)
class LevelModel:
    """Edge points of the reference at one pyramid level, relative to the reference point
    (level pixels), with what the runtime needs to vote at that level."""

    level: int
    dx: np.ndarray  # float64
    dy: np.ndarray  # float64
    ori: np.ndarray  # int32 orientation codes
    mag: np.ndarray  # float64
    edge_threshold: float  # frame edge points below this gradient magnitude are ignored
    angle_step_deg: float  # moves the outermost template points by about one pixel
    radius: float  # largest |displacement|, level pixels

    def __len__(self) -> int:
        return int(self.dx.size)


@dataclass(frozen=True, eq=False)
class Template:
    """Everything registration needs at run time (see the module docstring)."""

    size: tuple[int, int]  # (w, h) of the crop window = the reference image
    mask: np.ndarray  # uint8 (h, w), 255 = part material
    levels: tuple[LevelModel, ...]  # index = pyramid level; the last one is the coarse level
    fine: FinePoints
    angle_range: tuple[float, float]
    scale_range: tuple[float, float]
    scale_step: float
    fine_sigma: float

    @property
    def ref(self) -> tuple[float, float]:
        """Reference point: the centre of the crop window (pixel-centre coordinates)."""
        return ((self.size[0] - 1) / 2.0, (self.size[1] - 1) / 2.0)

    @property
    def coarse_level(self) -> int:
        return len(self.levels) - 1

    @classmethod
    def build(
        cls,
        reference: np.ndarray,
        *,
        foreground: np.ndarray | None = None,
        angle_range: tuple[float, float] = (0.0, 360.0),
        scale_range: tuple[float, float] = (1.0, 1.0),
        scale_step: float = 0.02,
        coarse_size: int = 32,
        max_level: int = 4,
        coarse_points: int = 200,
        level_points: int = 300,
        fine_points: int = 1000,
        fine_sigma: float = 1.5,
        edge_fraction: float = 0.25,
        frame_edge_ratio: float = 0.35,
    ) -> Template:
        """Template from ``reference``, an aligned image of a good part whose whole extent is the
        crop window.

        ``foreground``: the part's mask (non-zero = material); derived by Otsu + morphology +
        hole filling when omitted. ``angle_range``: rotations searched at run time, degrees
        (``(0, 360)`` = any). ``scale_range``/``scale_step``: optional small scale search.
        ``coarse_size``: the coarsest level is the deepest at which the template is still at
        least this many pixels across. ``*_points``: caps on edge points per model (speed).
        ``edge_fraction``: template edges are NMS pixels above this fraction of the 99th
        percentile gradient; ``frame_edge_ratio``: frame edges must reach this fraction of the
        template's median edge strength.
        """
        try:
            check_image(reference, "reference")
        except RegistrationError as exc:
            raise TemplateError(str(exc)) from exc
        grey = to_grey(reference)
        h, w = grey.shape
        mask = _mask(grey, foreground)
        if not 0.0 < angle_range[1] - angle_range[0] <= 360.0:
            raise TemplateError(f"angle_range {angle_range}: need start < stop <= start + 360")
        if not 0.0 < scale_range[0] <= scale_range[1] or scale_step <= 0.0:
            raise TemplateError(f"scale_range {scale_range} / scale_step {scale_step} invalid")
        top = 0
        while top < max_level and min(w, h) / 2 ** (top + 1) >= coarse_size:
            top += 1
        pyr = pyramid(grey, top)
        top = len(pyr) - 1
        ref = ((w - 1) / 2.0, (h - 1) / 2.0)
        rng = np.random.default_rng(0)  # deterministic thinning: same reference, same template
        levels = []
        for lvl, img in enumerate(pyr):
            cap = coarse_points if lvl == top else level_points
            levels.append(
                _level_model(lvl, img, mask, ref, cap, edge_fraction, frame_edge_ratio, rng)
            )
        fine = _fine_points(pyr[0], mask, ref, fine_points, fine_sigma, edge_fraction, rng)
        template = cls(
            size=(w, h),
            mask=mask,
            levels=tuple(levels),
            fine=fine,
            angle_range=(float(angle_range[0]), float(angle_range[1])),
            scale_range=(float(scale_range[0]), float(scale_range[1])),
            scale_step=float(scale_step),
            fine_sigma=float(fine_sigma),
        )
        log.info(
            "template %dx%d: levels 0..%d, points %s, fine %d",
            w, h, top, [len(m) for m in levels], len(fine),
        )  # fmt: skip
        return template

    def save(self, directory: Path) -> list[str]:
        """Write the template into ``directory``; returns the file names written (relative)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "size": list(self.size),
            "angle_range": list(self.angle_range),
            "scale_range": list(self.scale_range),
            "scale_step": self.scale_step,
            "fine_sigma": self.fine_sigma,
            "levels": [
                {
                    "level": m.level,
                    "file": _level_file(m.level),
                    "edge_threshold": m.edge_threshold,
                    "angle_step_deg": m.angle_step_deg,
                    "radius": m.radius,
                }
                for m in self.levels
            ],
            "fine_file": FINE_FILE,
            "mask_file": MASK_FILE,
        }
        written = [JSON_FILE, MASK_FILE, FINE_FILE]
        (directory / JSON_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if not cv2.imwrite(str(directory / MASK_FILE), self.mask):
            raise TemplateError(f"{directory / MASK_FILE}: could not write the mask")
        f = self.fine
        fine = np.stack([f.dx, f.dy, f.nx, f.ny, f.strength], axis=1)
        np.save(directory / FINE_FILE, fine, allow_pickle=False)
        for m in self.levels:
            arr = np.stack([m.dx, m.dy, m.ori.astype(np.float64), m.mag], axis=1)
            np.save(directory / _level_file(m.level), arr, allow_pickle=False)
            written.append(_level_file(m.level))
        return written

    @classmethod
    def load(cls, directory: Path) -> Template:
        """Read a template written by ``save``; TemplateError says what is missing or wrong."""
        directory = Path(directory)
        meta_path = directory / JSON_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise TemplateError(f"{meta_path}: missing") from exc
        except (OSError, ValueError) as exc:
            raise TemplateError(f"{meta_path}: unreadable ({exc})") from exc
        try:
            return cls._from_meta(directory, meta)
        except TemplateError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise TemplateError(f"{meta_path}: malformed ({exc!r})") from exc

    @classmethod
    def _from_meta(cls, directory: Path, meta: dict[str, Any]) -> Template:
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise TemplateError(
                f"{directory / JSON_FILE}: not a {FORMAT} v{VERSION} "
                f"(format={meta.get('format')!r}, version={meta.get('version')!r})"
            )
        w, h = (int(v) for v in meta["size"])
        mask = cv2.imread(str(directory / meta["mask_file"]), cv2.IMREAD_GRAYSCALE)
        if mask is None or mask.shape != (h, w):
            raise TemplateError(
                f"{directory / meta['mask_file']}: missing, unreadable or not {w}x{h}"
            )
        fine_arr = _load_array(directory / meta["fine_file"], 5)
        fine = FinePoints(*(np.ascontiguousarray(fine_arr[:, i]) for i in range(5)))
        levels = []
        for i, lm in enumerate(meta["levels"]):
            if int(lm["level"]) != i:
                raise TemplateError(f"{directory / JSON_FILE}: levels out of order")
            arr = _load_array(directory / lm["file"], 4)
            ori = arr[:, 2].astype(np.int32)
            if ori.size and (ori.min() < 0 or ori.max() >= N_ORI):
                raise TemplateError(f"{directory / lm['file']}: orientation codes out of range")
            levels.append(
                LevelModel(
                    level=i,
                    dx=np.ascontiguousarray(arr[:, 0]),
                    dy=np.ascontiguousarray(arr[:, 1]),
                    ori=ori,
                    mag=np.ascontiguousarray(arr[:, 3]),
                    edge_threshold=float(lm["edge_threshold"]),
                    angle_step_deg=float(lm["angle_step_deg"]),
                    radius=float(lm["radius"]),
                )
            )
        if not levels:
            raise TemplateError(f"{directory / JSON_FILE}: no levels")
        return cls(
            size=(w, h),
            mask=np.where(mask > 0, 255, 0).astype(np.uint8),
            levels=tuple(levels),
            fine=fine,
            angle_range=(float(meta["angle_range"][0]), float(meta["angle_range"][1])),
            scale_range=(float(meta["scale_range"][0]), float(meta["scale_range"][1])),
            scale_step=float(meta["scale_step"]),
            fine_sigma=float(meta["fine_sigma"]),
        )

    def outline(self, count: int = 256) -> np.ndarray:
        """Up to ``count`` points (float64 (n, 2), relative to the reference point) on the outer
        contour of the foreground mask: where the part's material ends."""
        contours, _ = cv2.findContours(self.mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            return np.zeros((0, 2))
        pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
        if len(pts) > count:
            pts = pts[np.linspace(0, len(pts) - 1, count).astype(np.int64)]
        return pts - np.asarray(self.ref)


def _mask(grey: np.ndarray, foreground: np.ndarray | None) -> np.ndarray:
    if foreground is None:
        return foreground_mask(grey)
    fg = np.asarray(foreground)
    if fg.ndim == 3 and fg.shape[2] == 1:
        fg = fg[:, :, 0]
    if fg.shape != grey.shape:
        raise TemplateError(f"foreground shape {fg.shape} differs from the reference {grey.shape}")
    mask = np.where(fg > 0, 255, 0).astype(np.uint8)
    if not mask.any():
        raise TemplateError("foreground mask is empty")
    return mask


def _region(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Mask resized to a level and dilated: edges of the part and its outline, no background."""
    small = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    return cv2.dilate((small > 0).astype(np.uint8), kernel) > 0


def _thin(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``cap`` of ``n`` items, spread uniformly, in increasing order."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))


def _level_model(
    level: int,
    img: np.ndarray,
    mask: np.ndarray,
    ref: tuple[float, float],
    cap: int,
    edge_fraction: float,
    frame_edge_ratio: float,
    rng: np.random.Generator,
) -> LevelModel:
    region = _region(mask, img.shape)
    gx, gy = gradients(img)
    mag = np.hypot(gx, gy)
    inside = mag[region]
    strong = float(np.percentile(inside, 99)) if inside.size else 0.0
    if strong <= 1e-3:
        raise TemplateError(f"reference has no edges at pyramid level {level} (flat image?)")
    pts = edge_points(img, edge_fraction * strong)
    keep = region[pts.y, pts.x]
    idx = np.flatnonzero(keep)[_thin(int(keep.sum()), cap, rng)]
    if idx.size < 8:
        raise TemplateError(f"reference has too few edge points ({idx.size}) at level {level}")
    f = 2.0**level
    dx = pts.x[idx].astype(np.float64) - ref[0] / f
    dy = pts.y[idx].astype(np.float64) - ref[1] / f
    radius = float(np.max(np.hypot(dx, dy)))
    return LevelModel(
        level=level,
        dx=dx,
        dy=dy,
        ori=pts.ori[idx].copy(),
        mag=pts.mag[idx].astype(np.float64),
        edge_threshold=frame_edge_ratio * float(np.median(pts.mag[idx])),
        angle_step_deg=float(np.clip(math.degrees(1.0 / max(radius, 1.0)), 0.05, 10.0)),
        radius=radius,
    )


def _fine_points(
    img: np.ndarray,
    mask: np.ndarray,
    ref: tuple[float, float],
    cap: int,
    sigma: float,
    edge_fraction: float,
    rng: np.random.Generator,
) -> FinePoints:
    region = _region(mask, img.shape)
    smoothed = smooth(img, sigma)
    gx, gy = gradients(smoothed)
    mag = np.hypot(gx, gy)
    strong = float(np.percentile(mag[region], 99))
    pts = edge_points(smoothed, edge_fraction * strong)
    keep = np.flatnonzero(region[pts.y, pts.x])
    x, y = pts.x[keep], pts.y[keep]
    norm = np.maximum(mag[y, x], 1e-9)
    nx = (gx[y, x] / norm).astype(np.float64)
    ny = (gy[y, x] / norm).astype(np.float64)
    sx, sy, strength = localise(smoothed, x, y, nx, ny)
    ok = np.flatnonzero(strength > 0)
    ok = ok[_thin(ok.size, cap, rng)]
    if ok.size < 8:
        raise TemplateError(f"reference has too few sub-pixel edge points ({ok.size})")
    return FinePoints(
        dx=sx[ok] - ref[0],
        dy=sy[ok] - ref[1],
        nx=nx[ok],
        ny=ny[ok],
        strength=strength[ok],
    )


def _load_array(path: Path, columns: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise TemplateError(f"{path}: missing") from exc
    except (OSError, ValueError) as exc:
        raise TemplateError(f"{path}: unreadable or corrupt ({exc})") from exc
    if arr.dtype != np.float64 or arr.ndim != 2 or arr.shape[1] != columns or not len(arr):
        raise TemplateError(f"{path}: expected a non-empty float64 (n, {columns}) array")
    if not np.isfinite(arr).all():
        raise TemplateError(f"{path}: contains non-finite values")
    return arr
