"""Defects and nuisances painted onto a part's canonical layers.

Every painter takes (canvas, part, rng), changes the canvas in place and sets
``canvas.mask`` to the pixels it visibly altered (by more than ``VISIBLE``), grown by about
one pixel. Sizes are given at a
128 px canonical view and scaled by ``part.k``; lengths are fractions of the part's extent.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from trainer.synth_geom import (
    bezier,
    blob_polygon,
    fill_coverage,
    gaussian,
    line_coverage,
    to_mask,
)
from trainer.synth_part import Canvas, PartModel

Painter = Callable[[Canvas, PartModel, np.random.Generator], None]

# A change counts as part of the anomaly above ~8 grey levels (4 sigma of the sensor noise);
# fainter fringes would only put unchanged-looking pixels into the ground truth.
VISIBLE = 0.03


def _grow(part: PartModel) -> int:
    return max(1, round(part.k))


def _extent(part: PartModel) -> float:
    """Size of the part (diameter of its material), the unit for defect lengths."""
    return 2.0 * part.r_max


def _pick(part: PartModel, rng: np.random.Generator, min_dist: float) -> tuple[float, float]:
    pts = part.points_inside(min_dist)
    y, x = pts[int(rng.integers(len(pts)))]
    return float(x) + rng.uniform(-0.5, 0.5), float(y) + rng.uniform(-0.5, 0.5)


def _on_material(part: PartModel, pts: np.ndarray, min_dist: float) -> bool:
    h, w = part.dist.shape
    xi = np.round(pts[:, 0]).astype(int)
    yi = np.round(pts[:, 1]).astype(int)
    if xi.min() < 0 or yi.min() < 0 or xi.max() >= w or yi.max() >= h:
        return False
    return bool((part.dist[yi, xi] >= min_dist).all())


def _window(
    part: PartModel, x: float, y: float, r: float
) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Slices of a square window of half size ``r`` around (x, y) and its local offsets."""
    h, w = part.dist.shape
    x0, x1 = max(0, int(x - r)), min(w, int(x + r) + 2)
    y0, y1 = max(0, int(y - r)), min(h, int(y + r) + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return (slice(y0, y1), slice(x0, x1)), xx - x, yy - y


def _blend_tint(
    canvas: Canvas,
    cov: np.ndarray,
    colour: tuple[float, float, float],
    where: tuple[slice, slice] | None = None,
) -> None:
    tint = canvas.tint_layer()
    if tint is None:
        return
    region = tint if where is None else tint[where]
    c = cov[..., None]
    region *= 1.0 - c
    region += c * np.asarray(colour, np.float32)


# ----------------------------------------------------------------------------- defects


def scratch(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A thin straight-ish line, bright (fresh metal) or dark (a groove)."""
    k, extent = part.k, _extent(part)
    pts = np.zeros((2, 2))
    for attempt in range(200):
        length = rng.uniform(0.15, 0.40) * extent * (1.0 - attempt / 300)
        x, y = _pick(part, rng, 2.0 * k)
        a = rng.uniform(0, math.pi)
        d = np.array([math.cos(a), math.sin(a)]) * length / 2
        normal = np.array([-d[1], d[0]]) * rng.uniform(-0.15, 0.15)
        mid = np.array([x, y])
        ctrl = np.array([mid - d, mid + normal, mid + d])
        pts = bezier(ctrl, max(8, int(length)))
        if _on_material(part, pts, 1.5 * k):
            break
    thickness = max(1, round(k * (1 if rng.random() < 0.6 else 2)))
    cov = line_coverage(canvas.lum.shape, pts, thickness) * canvas.alpha
    contrast = rng.uniform(0.25, 0.38) * (1.0 if rng.random() < 0.55 else -1.0)
    canvas.lum += contrast * cov
    canvas.mask = to_mask(cov * abs(contrast) > VISIBLE, _grow(part))


def dent(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A small crater: dark floor, a wall lit on the far side, a bright raised rim."""
    r = rng.uniform(3.0, 6.0) * part.k
    x, y = _pick(part, rng, 1.5 * r + 1.0)
    where, dx, dy = _window(part, x, y, 1.6 * r + 2)
    rr = np.sqrt(dx * dx + dy * dy) / r
    facing = (dx * part.light[0] + dy * part.light[1]) / (rr * r + 1e-6)
    depth, wall = rng.uniform(0.22, 0.32), rng.uniform(0.14, 0.22)
    # Concave floor: the wall opposite the light faces it and brightens, the near wall darkens.
    crater = (-depth * (1 - rr**4) - wall * rr * facing) * (rr < 1)
    # Raised lip: bright where it faces the light, a little shadow on the far side.
    lip = np.exp(-(((rr - 1.08) / 0.14) ** 2))
    rim = rng.uniform(0.16, 0.26) * lip * np.clip(0.3 + facing, -0.3, 1.0)
    delta = (crater + rim) * canvas.alpha[where]
    canvas.lum[where] += delta
    canvas.mask = _local_mask(canvas, where, np.abs(delta) > VISIBLE, part)


def crack(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A dark jagged line running into the material from an edge or a hole."""
    k, extent = part.k, _extent(part)
    walk = np.zeros((2, 2))
    for _ in range(100):
        target = rng.uniform(0.12, 0.22) * extent
        walk = _crack_walk(part, rng, target)
        if _walk_length(walk) >= 0.6 * target:
            break
    thickness = max(1, round(k))
    cov = line_coverage(canvas.lum.shape, walk, thickness)
    if rng.random() < 0.5 and len(walk) > 6:  # a short side branch
        start = walk[int(rng.integers(len(walk) // 3, len(walk) - 2))]
        branch = _crack_walk(part, rng, 0.35 * _walk_length(walk), start=start)
        cov = np.maximum(cov, 0.7 * line_coverage(canvas.lum.shape, branch, thickness))
    cov *= canvas.alpha
    contrast = rng.uniform(0.3, 0.42)
    canvas.lum -= contrast * cov
    canvas.mask = to_mask(cov * contrast > VISIBLE, _grow(part))


def _crack_walk(
    part: PartModel, rng: np.random.Generator, target: float, start: np.ndarray | None = None
) -> np.ndarray:
    branch = start is not None
    if start is None:
        y, x = _edge_point(part, rng)
        start = np.array([float(x), float(y)])
    yi, xi = round(float(start[1])), round(float(start[0]))
    heading = math.atan2(part.inward[1][yi, xi], part.inward[0][yi, xi])
    if branch:  # a branch leaves the main crack at an angle
        heading += (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.5, 1.0)
    step = 1.5 * max(1.0, part.k)
    pts = [start.astype(np.float64)]
    direction = heading
    for _ in range(int(target / step)):
        direction = heading + rng.normal(0, 0.5)  # zig-zag around a slowly drifting heading
        heading += rng.normal(0, 0.12)
        nxt = pts[-1] + step * np.array([math.cos(direction), math.sin(direction)])
        if not _on_material(part, nxt[None, :], 0.8):
            break
        pts.append(nxt)
    return np.array(pts)


def _edge_point(part: PartModel, rng: np.random.Generator) -> np.ndarray:
    edge = np.argwhere((part.dist >= 0.5) & (part.dist <= 1.5))
    pt: np.ndarray = edge[int(rng.integers(len(edge)))]
    return pt


def _walk_length(pts: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) if len(pts) > 1 else 0.0


def missing_hole(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """One hole was never drilled: material (and its texture) where the hole should be."""
    hole = int(rng.integers(len(part.design.holes)))
    alpha, shade = part.undrilled(hole)
    _geometric_change(canvas, part, alpha, shade)


def chipped_edge(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A chunk broken out of the outer silhouette: the conveyor shows through."""
    y, x = part.outer_edge[int(rng.integers(len(part.outer_edge)))]
    nx, ny = part.inward[0][y, x], part.inward[1][y, x]
    r = rng.uniform(4.0, 8.0) * part.k
    cx, cy = x - 0.1 * r * nx, y - 0.1 * r * ny  # centre on the edge: a bite, not a notch
    poly = blob_polygon(rng, 0.0, 0.0, r, jag=0.6, n=14)
    # Squash across the edge so the chip is wider than deep, like a real spall.
    along = poly[:, 0] * -ny + poly[:, 1] * nx
    across = (poly[:, 0] * nx + poly[:, 1] * ny) * 0.75
    pts = np.stack([cx + along * -ny + across * nx, cy + along * nx + across * ny], axis=1)
    cut = fill_coverage(canvas.lum.shape, [pts])
    alpha = canvas.alpha * (1.0 - cut)
    shade = part.edge_shading(alpha)
    # Fresh fracture faces scatter light: a rough, slightly brighter rim along the new edge.
    rim = gaussian(cut, 0.8 * max(1.0, part.k)) * (1.0 - cut) * (alpha > 0.5)
    shade = shade + rim * rng.uniform(0.05, 0.12) * (1 + 0.5 * rng.standard_normal(rim.shape))
    _geometric_change(canvas, part, alpha, shade.astype(np.float32))


def _geometric_change(
    canvas: Canvas, part: PartModel, alpha: np.ndarray, shade: np.ndarray
) -> None:
    visible = np.maximum(alpha, canvas.alpha)  # shading off the material is never seen
    contrast = part.base_level - part.belt_level  # material against the conveyor
    changed = (np.abs(alpha - canvas.alpha) * contrast > VISIBLE) | (
        np.abs(shade - part.shade) * visible > VISIBLE
    )
    canvas.lum += shade - part.shade
    canvas.alpha = alpha
    canvas.mask = to_mask(changed, _grow(part))


def foreign_material(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A blob stuck on the part: a shiny weld-spatter bead or a matte rubber crumb."""
    r = rng.uniform(4.0, 8.0) * part.k
    x, y = _pick(part, rng, 1.3 * r + 1.0)
    where, dx, dy = _window(part, x, y, 1.5 * r + 3)
    poly = blob_polygon(rng, 0.0, 0.0, r, jag=0.35) - [dx[0, 0], dy[0, 0]]
    cov = fill_coverage(dx.shape, [poly])
    rr = np.sqrt(dx * dx + dy * dy) / r
    if rng.random() < 0.5:
        lx, ly = part.light
        spot = np.exp(-((dx - 0.35 * r * lx) ** 2 + (dy - 0.35 * r * ly) ** 2) / (0.3 * r) ** 2)
        look = 0.45 + 0.45 * spot - 0.2 * np.clip(rr, 0, 1) ** 2
        colour = (0.78, 0.95, 1.22) if rng.random() < 0.5 else (1.25, 1.0, 0.8)  # heat tint
    else:
        look = rng.uniform(0.07, 0.13) + 0.025 * rng.standard_normal(dx.shape)
        colour = (1.0, 1.0, 1.0)
    contact = np.clip(gaussian(cov, 1.0 * max(1.0, part.k)) - cov, 0, 1) * 0.35
    lum = canvas.lum[where]
    before = lum.copy()
    lum *= 1.0 - contact
    lum += cov * (look.astype(np.float32) - lum)
    _blend_tint(canvas, cov, colour, where)
    # The blob itself counts even where its brightness happens to match the metal.
    changed = (cov > 0.5) | (np.abs(lum - before) > VISIBLE)
    canvas.mask = _local_mask(canvas, where, changed, part)


def _local_mask(
    canvas: Canvas, where: tuple[slice, slice], local: np.ndarray, part: PartModel
) -> np.ndarray:
    full = np.zeros(canvas.lum.shape, bool)
    full[where] = local
    return to_mask(full, _grow(part))


# --------------------------------------------------------------------------- nuisances


def dust(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """One to three dark specks of grime the size and darkness of a dent's floor (the pits a
    line must reject), lying on the part: soft-edged, unlit by the lamp (no bright rim, no
    shaded wall), a little irregular."""
    cov_layer, lum_layer = canvas.overlay()
    specks = np.zeros_like(canvas.lum)
    for _ in range(int(rng.integers(1, 4))):
        r = rng.uniform(3.0, 6.0) * part.k
        x, y = _pick(part, rng, 1.2 * r + 1.0)
        where, dx, dy = _window(part, x, y, 2.2 * r + 2)
        # A squashed, slightly lumpy Gaussian: clumped fibres and soot, not a machined crater.
        a = rng.uniform(0, math.pi)
        u = (dx * math.cos(a) + dy * math.sin(a)) / rng.uniform(0.75, 1.0)
        v = -dx * math.sin(a) + dy * math.cos(a)
        lumps = 1.0 + 0.15 * rng.standard_normal(dx.shape).astype(np.float32)
        blob = rng.uniform(0.55, 0.8) * np.exp(-(u * u + v * v) / (2 * (0.6 * r) ** 2)) * lumps
        specks[where] = np.maximum(specks[where], np.clip(blob, 0.0, 1.0))
    grey = rng.uniform(0.12, 0.24)
    _add_overlay(cov_layer, lum_layer, specks, grey)
    canvas.mask = to_mask(_overlay_change(canvas, part, specks, grey) > VISIBLE, _grow(part))


def lint(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A textile fibre as thin and long as a scratch, as contrasted, lying on the part and free
    to cross its edge. A fibre lies in a gentle arc (its sagitta 8-20 % of its length, where a
    scratch's is at most ~4 %), with a little wobble along it."""
    cov_layer, lum_layer = canvas.overlay()
    length = rng.uniform(0.15, 0.40) * _extent(part)
    x, y = _pick(part, rng, 2.0)
    a = rng.uniform(0, 2 * math.pi)
    half = np.array([math.cos(a), math.sin(a)]) * length / 2
    normal = np.array([-half[1], half[0]]) / (length / 2)
    sagitta = rng.uniform(0.08, 0.20) * length * (1.0 if rng.random() < 0.5 else -1.0)
    mid = np.array([x, y])
    # A quadratic Bezier's midpoint lies halfway to its middle control point.
    ctrl = np.array([mid - half, mid + 2.0 * sagitta * normal, mid + half])
    pts = bezier(ctrl, max(16, int(2 * length)))
    wobble = np.sin(np.linspace(0, rng.uniform(2, 4) * math.pi, len(pts)) + rng.uniform(0, 6.3))
    pts = pts + np.outer(wobble * rng.uniform(0.0, 0.015) * length, normal)
    thickness = max(1, round(part.k * (1 if rng.random() < 0.6 else 2)))
    fibre = line_coverage(canvas.lum.shape, pts, thickness) * rng.uniform(0.55, 0.85)
    shade = rng.uniform(0.85, 0.97) if rng.random() < 0.55 else rng.uniform(0.1, 0.2)
    _add_overlay(cov_layer, lum_layer, fibre, shade)
    canvas.mask = to_mask(_overlay_change(canvas, part, fibre, shade) > VISIBLE, _grow(part))


def _overlay_change(canvas: Canvas, part: PartModel, cov: np.ndarray, value: float) -> np.ndarray:
    """How much an overlay changes what is under it (the part, or the conveyor)."""
    # The conveyor under it lies in the part's shadow near the edge (synth_scene._composite).
    belt = part.belt_level * (1.0 - canvas.shadow)
    under = canvas.alpha * canvas.lum + (1.0 - canvas.alpha) * belt
    out: np.ndarray = cov * np.abs(value - under)
    return out


def _add_overlay(
    cov_layer: np.ndarray, lum_layer: np.ndarray, cov: np.ndarray, value: float
) -> None:
    on = cov > cov_layer
    cov_layer[on] = cov[on]
    lum_layer[on] = value


def oil_film(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A large smooth faint stain: slightly darker, iridescent in colour."""
    radius = rng.uniform(0.12, 0.22) * _extent(part)
    x, y = _pick(part, rng, 0.3 * radius)
    canvas.mask = _oil_film_at(canvas, part, rng, x, y, radius)


def _oil_film_at(
    canvas: Canvas, part: PartModel, rng: np.random.Generator, x: float, y: float, radius: float
) -> np.ndarray:
    """Paint a film centred near (x, y); its mask."""
    where, dx, dy = _window(part, x, y, 2.2 * radius)
    field = np.zeros(dx.shape, np.float32)
    for _ in range(int(rng.integers(2, 5))):  # a few overlapping smears
        ox, oy = rng.normal(0, 0.35 * radius, 2)
        sig = rng.uniform(0.45, 0.7) * radius
        field += np.exp(-((dx - ox) ** 2 + (dy - oy) ** 2) / (2 * sig * sig))
    film = np.clip((field / field.max() - 0.3) / 0.45, 0.0, 1.0)
    film = (film * film * (3 - 2 * film)) * canvas.alpha[where]  # smoothstep: soft rim
    darkening = rng.uniform(0.09, 0.15) * film * canvas.lum[where]
    canvas.lum[where] -= darkening
    tint = canvas.tint_layer()
    if tint is not None:
        rings = np.sqrt(dx * dx + dy * dy) / radius * rng.uniform(1.5, 3.0) * 2 * math.pi
        for ch in range(3):  # thin-film interference shifts hue with thickness
            tint[where][..., ch] *= 1.0 + 0.05 * film * np.cos(rings + ch * 2.1)
    return _local_mask(canvas, where, darkening > VISIBLE, part)


def _brightness_gain(rng: np.random.Generator) -> float:
    return 1.0 + (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(0.10, 0.20)


def brightness(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """The whole frame 10-20 % brighter or darker (lamp ageing, exposure drift); no mask."""
    canvas.gain = _brightness_gain(rng)


# ------------------------------------------------------------------- defects under nuisances
# A part with a defect and a nuisance is a defect: class "defect", the defect's mask.

_SURFACE_DEFECTS = ("scratch", "dent", "crack")


def _surface_defect(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    kind = _SURFACE_DEFECTS[int(rng.integers(len(_SURFACE_DEFECTS)))]
    PAINTERS[kind](canvas, part, rng)


def defect_under_oil(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A scratch, dent or crack with an oil film spread over it."""
    _surface_defect(canvas, part, rng)
    defect = canvas.mask
    ys, xs = np.nonzero(defect)
    radius = rng.uniform(0.12, 0.22) * _extent(part)
    jitter = rng.normal(0, 0.2 * radius, 2)
    _oil_film_at(canvas, part, rng, float(xs.mean() + jitter[0]), float(ys.mean() + jitter[1]),
                 radius)  # fmt: skip
    canvas.mask = defect


def defect_with_brightness(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A scratch, dent or crack on a part lit 10-20 % brighter or darker than usual."""
    _surface_defect(canvas, part, rng)
    canvas.gain = _brightness_gain(rng)


def defect_with_dust(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A scratch, dent or crack, and dust specks somewhere on the same part."""
    _defect_with(dust, canvas, part, rng)


def defect_with_lint(canvas: Canvas, part: PartModel, rng: np.random.Generator) -> None:
    """A scratch, dent or crack, and a fibre lying somewhere on the same part."""
    _defect_with(lint, canvas, part, rng)


def _defect_with(
    nuisance: Painter, canvas: Canvas, part: PartModel, rng: np.random.Generator
) -> None:
    # Placed independently: mostly apart, now and then over the defect; often the stronger of
    # the two, which is what a line that judged only the strongest region would pass.
    _surface_defect(canvas, part, rng)
    defect = canvas.mask
    nuisance(canvas, part, rng)
    canvas.mask = defect


PAINTERS: dict[str, Painter] = {
    "scratch": scratch,
    "dent": dent,
    "crack": crack,
    "missing_hole": missing_hole,
    "chipped_edge": chipped_edge,
    "foreign_material": foreign_material,
    "dust": dust,
    "lint": lint,
    "oil_film": oil_film,
    "brightness": brightness,
    "defect_under_oil": defect_under_oil,
    "defect_with_brightness": defect_with_brightness,
    "defect_with_dust": defect_with_dust,
    "defect_with_lint": defect_with_lint,
}
