"""Appearance of a part family in its canonical canvas, and the per-image layer stack.

Luminance is float32 in [0, 1]. A part is rendered as layers that are later warped into the
frame together: the material's luminance, its coverage (alpha), the soft shadow it casts on
the conveyor, an overlay for things lying on top (dust, lint) and the defect mask. Colour is
a per-pixel tint on top of luminance, so mono and colour data share every geometric draw.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from trainer.synth_design import PartDesign, make_design, material_coverage
from trainer.synth_geom import fill_coverage, gaussian
from trainer.synth_types import canvas_centre

log = logging.getLogger(__name__)

FINISHES = ("brushed", "turned", "cast")
# BGR tints; each averages ~1 so the mono luminance is the same as the colour's mean.
PART_TINTS = ((1.03, 1.0, 0.97), (1.0, 1.0, 1.0), (0.94, 1.01, 1.05))
BELT_TINTS = ((0.92, 1.12, 0.96), (1.12, 1.0, 0.88), (1.0, 1.0, 1.0))
# Std of the pixel-scale surface texture. At ~1 mm per pixel machining marks are mostly
# sub-pixel: the camera sees a faint grain, not a strong pattern.
FINE_TEXTURE = 0.015
_HL_BINS = 1440  # angular resolution of the turned-face highlight table (quarter degrees)


@dataclass
class Canvas:
    """The layers of one part image in canonical coordinates.

    ``alpha`` and ``shadow`` may be shared with the family: replace them, never write into
    them. ``overlay_cov``/``overlay_lum`` describe material lying on top of the scene.
    """

    lum: np.ndarray
    alpha: np.ndarray
    shadow: np.ndarray
    mask: np.ndarray
    base_tint: np.ndarray
    tint: np.ndarray | None = None
    overlay_cov: np.ndarray | None = None
    overlay_lum: np.ndarray | None = None
    gain: float = 1.0

    @property
    def color(self) -> bool:
        return self.base_tint.shape[0] == 3

    def tint_layer(self) -> np.ndarray | None:
        """The writable HxWx3 tint, created on first use; None for mono output."""
        if not self.color:
            return None
        if self.tint is None:
            h, w = self.lum.shape
            self.tint = np.broadcast_to(self.base_tint, (h, w, 3)).astype(np.float32)
        return self.tint

    def overlay(self) -> tuple[np.ndarray, np.ndarray]:
        """Writable (coverage, luminance) overlay layers, created on first use."""
        if self.overlay_cov is None or self.overlay_lum is None:
            self.overlay_cov = np.zeros_like(self.lum)
            self.overlay_lum = np.zeros_like(self.lum)
        return self.overlay_cov, self.overlay_lum


@dataclass(frozen=True)
class Highlight:
    """Specular highlight: a straight band (brushed, cast) or a bow-tie (turned)."""

    kind: str
    angle: float
    offset: float
    width: float
    amp: float


class PartModel:
    """Everything fixed for one part family: geometry, finish, shading, palette."""

    def __init__(self, size: tuple[int, int], seed: np.random.SeedSequence, color: bool) -> None:
        geo_rng, tex_rng, look_rng = (np.random.default_rng(s) for s in seed.spawn(3))
        self.size = size
        self.s = float(min(size))
        self.k = self.s / 128.0  # defect geometry is specified at 128 px
        self.design: PartDesign = make_design(size, geo_rng)
        # Only a round part is turned on a lathe; plates are brushed or cast.
        finishes = FINISHES if self.design.family == "flange" else ("brushed", "cast")
        self.finish = finishes[int(tex_rng.integers(len(finishes)))]
        self.base_level = float(look_rng.uniform(0.50, 0.60))
        self.belt_level = float(look_rng.uniform(0.12, 0.17))
        la = look_rng.uniform(0, 2 * math.pi)
        self.light = (math.cos(la), math.sin(la))  # in-plane direction towards the light
        self.part_tint = _tint(PART_TINTS, look_rng, color)
        self.belt_tint = _tint(BELT_TINTS, look_rng, color)
        self.dx, self.dy = _offsets(size)
        self.texture, self.streak_index = _texture(self, tex_rng)
        self.highlight = _highlight(self, look_rng)
        self._highlight_lut()
        self.alpha = material_coverage(self.design)
        self.shade = self.edge_shading(self.alpha)
        self.flat = (self.base_level + self.texture).astype(np.float32)
        self.shadow = _shadow(self.alpha, self.light, self.k)
        self.dist = cv2.distanceTransform((self.alpha >= 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        self.r_max = self._radius()
        self.inward = _unit_gradient(self.dist, self.k)
        body = fill_coverage((size[1], size[0]), list(self.design.body))
        outer = cv2.distanceTransform((body >= 0.5).astype(np.uint8), cv2.DIST_L2, 3)
        self.outer_edge = np.argwhere((outer <= 1.6) & (self.dist >= 0.5) & (self.dist <= 1.6))
        self._undrilled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._inside: dict[float, np.ndarray] = {}
        log.debug(
            "part family: %s, %s finish, r_max=%.1f px", self.design.family, self.finish, self.r_max
        )

    def _radius(self) -> float:
        inside = self.alpha > 0
        return float(np.sqrt(self.dx[inside] ** 2 + self.dy[inside] ** 2).max()) + 1.0

    def undrilled(self, hole: int) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, edge shading) of the part with one hole not drilled; cached."""
        if hole not in self._undrilled:
            alpha = material_coverage(self.design, skip_hole=hole)
            self._undrilled[hole] = (alpha, self.edge_shading(alpha))
        return self._undrilled[hole]

    def points_inside(self, min_dist: float) -> np.ndarray:
        """(N, 2) array of (y, x) material pixels at least ``min_dist`` from any edge."""
        key = math.ceil(min_dist * 2) / 2  # cached per half pixel; never closer than asked
        if key not in self._inside:
            pts = np.argwhere(self.dist >= key)
            self._inside[key] = pts if len(pts) else np.argwhere(self.dist >= self.dist.max())
        return self._inside[key]

    def foreground(self) -> np.ndarray:
        """uint8 0/255: the good part's material in the canonical view."""
        return ((self.alpha >= 0.5) * 255).astype(np.uint8)

    def edge_shading(self, alpha: np.ndarray) -> np.ndarray:
        """Chamfer shading along every material edge: lit facets bright, others dark."""
        inside = (alpha >= 0.5).astype(np.uint8)
        dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        smooth = gaussian(dist, 1.0 * max(1.0, self.k))
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
        norm = np.sqrt(gx * gx + gy * gy) + 1e-6
        # distance grows inwards, so the outward normal is minus the gradient
        facing = -(gx * self.light[0] + gy * self.light[1]) / norm
        width = 2.2 * max(1.0, self.k)
        band = np.clip(1.0 - (dist - 0.5) / width, 0.0, 1.0)
        # Only on material: off it the value would be hidden, yet read as a change.
        out: np.ndarray = (band * (0.22 * facing - 0.04) * (alpha > 0)).astype(np.float32)
        return out

    def new_canvas(self, rng: np.random.Generator) -> Canvas:
        """A good part's layers with this image's small highlight and texture variation."""
        lum = self.flat + self.shade + self._highlight_layer(rng) + self._variation(rng)
        h, w = lum.shape
        return Canvas(
            lum=lum.astype(np.float32),
            alpha=self.alpha,
            shadow=self.shadow,
            mask=np.zeros((h, w), np.uint8),
            base_tint=self.part_tint,
        )

    def _highlight_lut(self) -> None:
        """Index maps so each image's highlight is a 1-D table lookup, not a 2-D exp."""
        hl = self.highlight
        if hl.kind == "bowtie":
            theta = np.arctan2(self.dy, self.dx)
            self._hl_index = (
                np.round((theta + math.pi) * (_HL_BINS / (2 * math.pi))).astype(np.int32) % _HL_BINS
            )
            self._hl_coord = np.arange(_HL_BINS) * (2 * math.pi / _HL_BINS) - math.pi
            r = np.sqrt(self.dx**2 + self.dy**2) / (0.45 * self.s)
            self._hl_weight: np.ndarray | None = np.clip(r, 0, 1).astype(np.float32)
            return
        proj = self.dx * math.cos(hl.angle) + self.dy * math.sin(hl.angle)
        lo = float(proj.min())
        self._hl_index = np.round((proj - lo) * 4).astype(np.int32)  # quarter-pixel bins
        self._hl_coord = lo + np.arange(int(self._hl_index.max()) + 1) / 4.0
        self._hl_weight = None

    def _highlight_layer(self, rng: np.random.Generator) -> np.ndarray:
        hl = self.highlight
        amp = hl.amp * rng.uniform(0.92, 1.08)
        if hl.kind == "bowtie":
            a = hl.angle + math.radians(rng.uniform(-4, 4))
            table = amp * np.cos(self._hl_coord - a) ** 8  # two opposite bright sectors
        else:
            offset = hl.offset + rng.uniform(-0.03, 0.03) * self.s
            table = amp * np.exp(-0.5 * ((self._hl_coord - offset) / hl.width) ** 2)
        layer: np.ndarray = table.astype(np.float32)[self._hl_index]
        return layer if self._hl_weight is None else layer * self._hl_weight

    def _variation(self, rng: np.random.Generator) -> np.ndarray:
        """Small per-part texture differences: low-frequency mottle plus faint streaks."""
        h, w = self.size[1], self.size[0]
        coarse = rng.standard_normal((6, 6)).astype(np.float32)
        out = 0.007 * cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        if self.streak_index is not None:
            n = int(self.streak_index.max()) + 1
            streaks = gaussian(rng.standard_normal((1, n)).astype(np.float32), 0.7)[0]
            out += 0.006 * streaks[self.streak_index]
        result: np.ndarray = out.astype(np.float32)
        return result


def _offsets(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel x and y offsets from the canvas centre (the part's reference point)."""
    cx, cy = canvas_centre(size)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    return xx - cx, yy - cy


def _tint(
    options: tuple[tuple[float, float, float], ...], rng: np.random.Generator, color: bool
) -> np.ndarray:
    choice = options[int(rng.integers(len(options)))]  # drawn in mono too: same family
    return np.array(choice if color else (1.0,), np.float32)


def _texture(part: PartModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """The family's fixed surface texture and, for streaky finishes, the streak index map."""
    if part.finish == "brushed":
        return _brushed(part, rng)
    if part.finish == "turned":
        return _turned(part, rng)
    return _cast(part, rng), None


def _norm(img: np.ndarray, std: float) -> np.ndarray:
    out: np.ndarray = ((img - img.mean()) * (std / (img.std() + 1e-9))).astype(np.float32)
    return out


def _brushed(part: PartModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = part.size[1], part.size[0]
    a = rng.uniform(0, math.pi)
    # Streak coordinate: distance across the brushing direction.
    across = -part.dx * math.sin(a) + part.dy * math.cos(a)
    index = np.round(across - across.min()).astype(np.int32)
    n = int(index.max()) + 1
    fine = _norm(gaussian(rng.standard_normal((1, n)).astype(np.float32), 0.6)[0], FINE_TEXTURE)
    streaks = fine[index]
    # Streaks fade along their length; modulate with noise stretched along the brushing.
    grain = rng.standard_normal((h, w)).astype(np.float32)
    along = _rotated_blur(grain, a, 0.15 * part.s, 0.5)
    tex = streaks * (0.7 + 0.3 * np.tanh(_norm(along, 1.0))) + _norm(along, 0.008)
    tex += _norm(gaussian(rng.standard_normal((h, w)).astype(np.float32), 0.12 * part.s), 0.01)
    return tex.astype(np.float32), index


def _turned(part: PartModel, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = part.size[1], part.size[0]
    r = np.sqrt(part.dx**2 + part.dy**2)
    index = np.round(r * 1.5).astype(np.int32)  # lathe marks: concentric rings
    n = int(index.max()) + 1
    rings = _norm(gaussian(rng.standard_normal((1, n)).astype(np.float32), 0.8)[0], FINE_TEXTURE)
    tex = rings[index]
    tex += _norm(gaussian(rng.standard_normal((h, w)).astype(np.float32), 0.5), 0.008)
    tex += _norm(gaussian(rng.standard_normal((h, w)).astype(np.float32), 0.1 * part.s), 0.01)
    return tex.astype(np.float32), index


def _cast(part: PartModel, rng: np.random.Generator) -> np.ndarray:
    h, w = part.size[1], part.size[0]
    grain = gaussian(rng.standard_normal((h, w)).astype(np.float32), 0.6 * part.k)
    speckle = _norm(grain, FINE_TEXTURE)
    mottle = _norm(gaussian(rng.standard_normal((h, w)).astype(np.float32), 0.06 * part.s), 0.02)
    pits = np.zeros((h, w), np.float32)
    n = int(h * w / 180)
    pits[rng.integers(0, h, n), rng.integers(0, w, n)] = -1.0
    pits_soft = gaussian(pits, 0.55 * max(1.0, part.k)) * 0.06
    out: np.ndarray = (speckle + mottle + pits_soft).astype(np.float32)
    return out


def _rotated_blur(
    img: np.ndarray, angle: float, sigma_along: float, sigma_across: float
) -> np.ndarray:
    """Blur stretched along ``angle`` (radians) by rotating, blurring in x, rotating back."""
    h, w = img.shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    rot = cv2.getRotationMatrix2D(centre, math.degrees(angle), 1.0)
    back = cv2.getRotationMatrix2D(centre, -math.degrees(angle), 1.0)
    flat = cv2.warpAffine(img, rot, (w, h), borderMode=cv2.BORDER_REFLECT)
    flat = cv2.GaussianBlur(flat, (0, 0), sigmaX=sigma_along, sigmaY=sigma_across)
    out: np.ndarray = cv2.warpAffine(flat, back, (w, h), borderMode=cv2.BORDER_REFLECT)
    return out


def _highlight(part: PartModel, rng: np.random.Generator) -> Highlight:
    if part.finish == "turned":
        return Highlight("bowtie", rng.uniform(0, math.pi), 0.0, 0.0, rng.uniform(0.10, 0.16))
    angle = rng.uniform(0, math.pi)
    return Highlight(
        "band",
        angle,
        rng.uniform(-0.15, 0.15) * part.s,
        rng.uniform(0.09, 0.14) * part.s,
        rng.uniform(0.10, 0.16),
    )


def _shadow(alpha: np.ndarray, light: tuple[float, float], k: float) -> np.ndarray:
    """Soft shadow the part casts on the conveyor, away from the light."""
    shift = 2.0 * max(1.0, k)
    m = np.array([[1, 0, -light[0] * shift], [0, 1, -light[1] * shift]], np.float32)
    h, w = alpha.shape
    moved = cv2.warpAffine(alpha, m, (w, h))
    out: np.ndarray = (0.45 * gaussian(moved, 1.8 * max(1.0, k))).astype(np.float32)
    return out


def _unit_gradient(dist: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors pointing into the material (up the distance-to-edge slope)."""
    smooth = gaussian(dist, max(1.0, k))
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    norm = np.sqrt(gx * gx + gy * gy) + 1e-6
    return gx / norm, gy / norm
