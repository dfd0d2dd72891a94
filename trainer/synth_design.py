"""Part geometry for the synthetic generator: one machined part family per seed.

A design is a silhouette (a bracket plate or a flange disk, each with one off-centre tab)
with round drilled holes and one slot. The tab, an odd number of corner holes and the
off-centre slot make the part rotationally asymmetric, so a pose over 360 degrees is unique.
Geometry is expressed in canonical-canvas pixels; ``s = min(W, H)`` sets the scale.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from trainer.synth_geom import (
    circle_polygon,
    fill_coverage,
    fixed,
    rounded_rect_polygon,
    stadium_polygon,
)
from trainer.synth_types import canvas_centre

log = logging.getLogger(__name__)

SUPERSAMPLE = 4
MAX_RADIUS_FRAC = 0.44  # material stays within this fraction of s from the centre
_CLEARANCE_FRAC = 0.035  # min material left between features and edges


@dataclass(frozen=True)
class Hole:
    """A round drilled through-hole."""

    x: float
    y: float
    r: float


@dataclass(frozen=True)
class PartDesign:
    """The silhouette (union of polygons), its holes and its slot, in canvas pixels."""

    family: str
    size: tuple[int, int]
    body: tuple[np.ndarray, ...]
    holes: tuple[Hole, ...]
    slot: np.ndarray

    def cutouts(self, skip_hole: int | None = None) -> list[np.ndarray]:
        """Polygons of every cut-out (holes and slot), optionally leaving one hole undrilled."""
        polys = [circle_polygon(h.x, h.y, h.r) for i, h in enumerate(self.holes) if i != skip_hole]
        polys.append(self.slot)
        return polys


def make_design(size: tuple[int, int], rng: np.random.Generator) -> PartDesign:
    """Draw a part design; retried until it fits the canvas with its features clear."""
    for _ in range(50):
        family = "bracket" if rng.random() < 0.5 else "flange"
        design = _bracket(size, rng) if family == "bracket" else _flange(size, rng)
        if design is not None and _fits(design):
            return design
    raise RuntimeError("could not generate a valid part design")  # pragma: no cover


def material_coverage(
    design: PartDesign, skip_hole: int | None = None, ss: int = SUPERSAMPLE
) -> np.ndarray:
    """Anti-aliased material coverage (float32 HxW) by supersampling the polygons."""
    w, h = design.size
    img = np.zeros((h * ss, w * ss), np.uint8)

    def up(p: np.ndarray) -> np.ndarray:
        return fixed((p + 0.5) * ss - 0.5)

    # One polygon per call: a single fillPoly would XOR overlapping polygons.
    for p in design.body:
        cv2.fillPoly(img, [up(p)], 255, cv2.LINE_AA, 4)
    for p in design.cutouts(skip_hole):
        cv2.fillPoly(img, [up(p)], 0, cv2.LINE_AA, 4)
    small = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255.0


def _fits(design: PartDesign) -> bool:
    alpha = material_coverage(design, ss=1)
    ys, xs = np.nonzero(alpha > 0)
    cx, cy = canvas_centre(design.size)
    s = min(design.size)
    r = float(np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2).max())
    return r <= MAX_RADIUS_FRAC * s and len(design.holes) >= 2


def _bracket(size: tuple[int, int], rng: np.random.Generator) -> PartDesign | None:
    s = float(min(size))
    cx, cy = canvas_centre(size)
    hw, hh = rng.uniform(0.28, 0.33) * s, rng.uniform(0.19, 0.23) * s
    corner = rng.uniform(0.04, 0.08) * s
    tab_len, tab_hw = rng.uniform(0.09, 0.12) * s, rng.uniform(0.06, 0.075) * s
    by = cy - 0.45 * tab_len  # shift the plate up so plate + tab stay centred
    tab_x = cx + rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.15) * s
    tab_end = (tab_x, by + hh + tab_len - tab_hw)
    body = (
        rounded_rect_polygon(cx, by, hw, hh, corner),
        stadium_polygon((tab_x, by + hh - tab_hw), tab_end, tab_hw),
    )
    material = fill_coverage(_shape(size), list(body))
    holes: list[Hole] = []
    r_hole = rng.uniform(0.035, 0.05) * s
    inset = max(corner, r_hole + 0.05 * s)
    corners = [(sx, sy) for sx in (-1, 1) for sy in (-1, 1)]
    skipped = int(rng.integers(4))  # three corner holes, not four: breaks the symmetry
    for i, (sx, sy) in enumerate(corners):
        if i != skipped:
            holes.append(Hole(cx + sx * (hw - inset), by + sy * (hh - inset), r_hole))
    holes.append(Hole(tab_end[0], tab_end[1], min(0.55 * tab_hw, rng.uniform(0.03, 0.04) * s)))
    material = _cut(material, [circle_polygon(h.x, h.y, h.r) for h in holes])
    slot = _place_slot(material, (cx, by), s, rng, angle=rng.choice([0.0, 90.0]))
    return None if slot is None else PartDesign("bracket", size, body, tuple(holes), slot)


def _flange(size: tuple[int, int], rng: np.random.Generator) -> PartDesign | None:
    s = float(min(size))
    cx, cy = canvas_centre(size)
    radius = rng.uniform(0.29, 0.32) * s
    ear_len, ear_hw = rng.uniform(0.08, 0.10) * s, rng.uniform(0.065, 0.08) * s
    ear_a = rng.uniform(0, 2 * math.pi)
    u = (math.cos(ear_a), math.sin(ear_a))
    ear_in = (cx + 0.6 * radius * u[0], cy + 0.6 * radius * u[1])
    ear_r = radius + ear_len - ear_hw
    ear_end = (cx + ear_r * u[0], cy + ear_r * u[1])
    body = (circle_polygon(cx, cy, radius), stadium_polygon(ear_in, ear_end, ear_hw))
    material = fill_coverage(_shape(size), list(body))
    holes = [Hole(cx, cy, rng.uniform(0.07, 0.095) * s)]
    holes.append(Hole(ear_end[0], ear_end[1], min(0.5 * ear_hw, rng.uniform(0.028, 0.038) * s)))
    n_bolts = int(rng.integers(3, 5))
    pitch, r_bolt = radius * rng.uniform(0.62, 0.7), rng.uniform(0.028, 0.038) * s
    a0 = ear_a + math.pi / n_bolts  # bolts sit between, not on, the ear direction
    for k in range(n_bolts):
        a = a0 + 2 * math.pi * k / n_bolts
        holes.append(Hole(cx + pitch * math.cos(a), cy + pitch * math.sin(a), r_bolt))
    material = _cut(material, [circle_polygon(h.x, h.y, h.r) for h in holes])
    slot = _place_slot(material, (cx, cy), s, rng, angle=None)
    return None if slot is None else PartDesign("flange", size, body, tuple(holes), slot)


def _shape(size: tuple[int, int]) -> tuple[int, int]:
    return size[1], size[0]


def _cut(material: np.ndarray, polys: list[np.ndarray]) -> np.ndarray:
    cut = fill_coverage(material.shape[:2], polys)
    out: np.ndarray = material * (1.0 - cut)
    return out


def _place_slot(
    material: np.ndarray,
    centre: tuple[float, float],
    s: float,
    rng: np.random.Generator,
    angle: float | None,
) -> np.ndarray | None:
    """An off-centre slot with clearance to every edge; None if none fits."""
    inside = (material >= 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    clear = _CLEARANCE_FRAC * s
    for tries in range(200):
        shrink = 1.0 - 0.4 * tries / 200  # prefer long slots, accept shorter ones
        half_len = rng.uniform(0.06, 0.1) * s * shrink
        hw = rng.uniform(0.022, 0.032) * s
        a = math.radians(angle if angle is not None else rng.uniform(0, 180))
        a += math.radians(rng.normal(0, 4)) if angle is not None else 0.0
        off = rng.uniform(0.1, 0.24) * s  # off-centre so the slot breaks symmetry
        b = rng.uniform(0, 2 * math.pi)
        x, y = centre[0] + off * math.cos(b), centre[1] + off * math.sin(b)
        dx, dy = half_len * math.cos(a), half_len * math.sin(a)
        poly = stadium_polygon((x - dx, y - dy), (x + dx, y + dy), hw)
        cov = fill_coverage(material.shape[:2], [poly]) > 0
        if cov.any() and float(dist[cov].min()) >= clear:
            return poly
    log.debug("no room for a slot in this design; drawing another")
    return None
