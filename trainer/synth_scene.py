"""The camera frame around the part: conveyor, clutter, placement, occlusion and the sensor.

Work is confined to the part's bounding box wherever possible so that large frames stay
cheap: only the conveyor texture, the optional shading and the sensor noise touch every pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from trainer.synth_geom import (
    bezier,
    blob_polygon,
    circle_polygon,
    fill_coverage,
    gaussian,
    line_coverage,
    stadium_polygon,
)
from trainer.synth_part import Canvas, PartModel
from trainer.synth_types import Pose, SynthConfig, canvas_centre, pose_matrix

NOISE_SIGMA = 2.0 / 255.0
GAIN_JITTER = 0.03
_PAD = 32  # the belt texture is larger than the frame: each image sees a shifted piece


class Scene:
    """Background and sensor model for one dataset (fixed per seed and frame size)."""

    def __init__(self, part: PartModel, config: SynthConfig, seed: np.random.SeedSequence):
        self.part = part
        self.config = config
        self.w, self.h = config.frame_size
        self.channels = 3 if config.color else 1
        self.belt = _belt_texture(
            (self.h + _PAD, self.w + _PAD), part.s, np.random.default_rng(seed)
        )

    def background(self, rng: np.random.Generator, pose: Pose) -> np.ndarray:
        """The conveyor (H, W, C) float32, with shading and loose objects if clutter is on."""
        oy, ox = (int(v) for v in rng.integers(0, _PAD + 1, 2))
        lum: np.ndarray = self.part.belt_level + self.belt[oy : oy + self.h, ox : ox + self.w]
        if self.config.clutter:
            lum = lum * _shading(rng, self.w, self.h)
        lum = lum.astype(np.float32, copy=False)
        if self.channels == 1:
            img = lum[..., None]
        else:
            img = cv2.cvtColor(lum, cv2.COLOR_GRAY2BGR)
            img *= self.part.belt_tint
        if self.config.clutter:
            _scatter_objects(img, self.part, pose, rng)
        return img


def _belt_texture(shape: tuple[int, int], s: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean conveyor texture: fine grain, faint running-direction streaks, mottle."""

    def noise(sx: float, sy: float, std: float) -> np.ndarray:
        white = rng.standard_normal(shape).astype(np.float32)
        n = cv2.GaussianBlur(white, (0, 0), sigmaX=sx, sigmaY=sy)
        out: np.ndarray = n * (std / (n.std() + 1e-9))
        return out

    return noise(0.7, 0.7, 0.010) + noise(12.0, 0.6, 0.006) + noise(0.1 * s, 0.1 * s, 0.007)


def _shading(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Smooth illumination fall-off: a linear gradient plus vignetting (separable)."""
    a = rng.uniform(0, 2 * math.pi)
    g, v = rng.uniform(0.15, 0.35), rng.uniform(0.0, 0.15)
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / max(w, h)
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / max(w, h)
    fx = g * math.cos(a) * xs - 2 * v * xs * xs
    fy = g * math.sin(a) * ys - 2 * v * ys * ys
    out: np.ndarray = 1.0 + fy[:, None] + fx[None, :]
    return out


# ------------------------------------------------------------------------------ clutter


def _scatter_objects(
    img: np.ndarray, part: PartModel, pose: Pose, rng: np.random.Generator
) -> None:
    """Screws, nuts, washers, chalk marks and stains lying on the belt, clear of the part."""
    h, w = img.shape[:2]
    s = part.s
    count = min(int(rng.integers(3, 6 + int(w * h / (2 * s) ** 2))), 14)
    placed = 0
    for _ in range(count * 20):
        if placed == count:
            break
        kind = ("screw", "nut", "washer", "mark", "stain")[int(rng.integers(5))]
        r = rng.uniform(0.035, 0.07) * s if kind != "mark" else rng.uniform(0.1, 0.25) * s
        r = rng.uniform(0.05, 0.12) * s if kind == "stain" else r
        x, y = rng.uniform(r + 3, w - r - 3), rng.uniform(r + 3, h - r - 3)
        if x < r + 3 or y < r + 3:
            continue  # frame too small for this object
        if math.hypot(x - pose.x, y - pose.y) < part.r_max + r + 0.06 * s:
            continue  # never touch the part
        _stamp(img, part, kind, x, y, r, rng)
        placed += 1


def _stamp(
    img: np.ndarray,
    part: PartModel,
    kind: str,
    x: float,
    y: float,
    r: float,
    rng: np.random.Generator,
) -> None:
    """Draw one object into its own window, then blend it into the frame."""
    x0, y0 = int(x - r) - 2, int(y - r) - 2
    size = int(2 * r) + 6
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(img.shape[1], x0 + size), min(img.shape[0], y0 + size)
    shape = (y1 - y0, x1 - x0)
    lx, ly = x - x0, y - y0
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    facing = ((xx - lx) * part.light[0] + (yy - ly) * part.light[1]) / r
    region = img[y0:y1, x0:x1]
    if kind == "stain":
        cov = gaussian(fill_coverage(shape, [blob_polygon(rng, lx, ly, r, 0.4)]), 0.2 * r)
        region *= (1.0 - rng.uniform(0.2, 0.35) * cov)[..., None]
        return
    if kind == "mark":
        a = rng.uniform(0, 2 * math.pi)
        d = np.array([math.cos(a), math.sin(a)]) * r
        mid = np.array([lx, ly])
        ctrl = np.array([mid - d, mid + rng.normal(0, 0.4, 2) * r, mid + d])
        cov = line_coverage(shape, bezier(ctrl, 32), max(2, round(2 * part.k)))
        cov *= rng.uniform(0.4, 0.7)
        colour = ((0.9, 0.95, 1.0), (0.3, 0.3, 1.0), (1.0, 0.45, 0.2))[int(rng.integers(3))]
        _blend(region, cov, np.full(shape, rng.uniform(0.35, 0.5), np.float32), colour)
        return
    if kind == "nut":
        hexagon = circle_polygon(lx, ly, r, 6)
        cov = fill_coverage(shape, [hexagon]) * (
            1 - fill_coverage(shape, [circle_polygon(lx, ly, 0.45 * r)])
        )
    elif kind == "washer":
        cov = fill_coverage(shape, [circle_polygon(lx, ly, r)]) * (
            1 - fill_coverage(shape, [circle_polygon(lx, ly, 0.5 * r)])
        )
    else:
        cov = fill_coverage(shape, [circle_polygon(lx, ly, r)])
    lum = rng.uniform(0.4, 0.55) + 0.18 * facing  # domed/chamfered metal catches the light
    if kind == "screw":
        a = rng.uniform(0, math.pi)
        ex, ey = math.cos(a) * 0.7 * r, math.sin(a) * 0.7 * r
        slot = fill_coverage(
            shape, [stadium_polygon((lx - ex, ly - ey), (lx + ex, ly + ey), 0.12 * r)]
        )
        lum = lum * (1 - 0.75 * slot)
    _blend(region, cov, lum.astype(np.float32), (1.0, 1.0, 1.02))


def _blend(
    region: np.ndarray, cov: np.ndarray, lum: np.ndarray, colour: tuple[float, float, float]
) -> None:
    tint = np.asarray(colour if region.shape[2] == 3 else (1.0,), np.float32)
    c = cov[..., None]
    region *= 1.0 - c
    region += c * lum[..., None] * tint


# ---------------------------------------------------------------------------- placement


def place(img: np.ndarray, canvas: Canvas, pose: Pose, size: tuple[int, int]) -> np.ndarray:
    """Warp the part's layers by ``pose`` and composite them into ``img``; returns the mask."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    layers = _stack(canvas)
    centre = canvas_centre(size)
    identity = (w, h) == size and (pose.x, pose.y, pose.angle_deg) == (*centre, 0.0)
    if identity:
        x0, y0, warped = 0, 0, layers
    else:
        m = pose_matrix(pose, size)
        x0, y0, x1, y1 = _bbox(m, size, w, h)
        m[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(
            layers,
            m,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        if warped.ndim == 2:  # pragma: no cover - the stack always has > 1 channel
            warped = warped[..., None]
    rh, rw = warped.shape[:2]
    region = img[y0 : y0 + rh, x0 : x0 + rw]
    _composite(region, warped, img.shape[2])
    mask[y0 : y0 + rh, x0 : x0 + rw] = (warped[..., 5] >= 0.5) * np.uint8(255)
    return mask


def _stack(canvas: Canvas) -> np.ndarray:
    """All layers in one array so a single warp moves them together."""
    zeros = np.zeros_like(canvas.lum)
    planes = [
        canvas.lum,
        canvas.alpha,
        canvas.shadow,
        canvas.overlay_cov if canvas.overlay_cov is not None else zeros,
        canvas.overlay_lum if canvas.overlay_lum is not None else zeros,
        canvas.mask.astype(np.float32) / 255.0,
    ]
    if canvas.color:
        tint = canvas.tint_layer()
        assert tint is not None
        planes.extend(tint[..., i] for i in range(3))
    return np.ascontiguousarray(np.stack(planes, axis=-1), dtype=np.float32)


def _bbox(m: np.ndarray, size: tuple[int, int], w: int, h: int) -> tuple[int, int, int, int]:
    cw, ch = size
    corners = np.array([[-1, -1, 1], [cw, -1, 1], [-1, ch, 1], [cw, ch, 1]], np.float64)
    pts = corners @ m.T
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 1
    return max(0, x0), max(0, y0), min(w, x1), min(h, y1)


def _composite(region: np.ndarray, warped: np.ndarray, channels: int) -> None:
    lum, alpha, shadow = warped[..., 0:1], warped[..., 1:2], warped[..., 2:3]
    ov_cov, ov_lum = warped[..., 3:4], warped[..., 4:5]
    tint = warped[..., 6:9] if channels == 3 else 1.0
    region *= 1.0 - shadow  # the part's shadow on the belt (and inside its holes)
    region *= 1.0 - alpha
    region += alpha * lum * tint
    region *= 1.0 - ov_cov
    region += ov_cov * ov_lum


# ---------------------------------------------------------------------------- occlusion


def occlude(
    img: np.ndarray, mask: np.ndarray, pose: Pose, part: PartModel, rng: np.random.Generator
) -> bool:
    """A gripper finger or a shadow bar over part of the part; False if none was placed.

    A gripper never hides a labelled defect, so the mask stays the truth of what is visible.
    """
    h, w = img.shape[:2]
    gripper = rng.random() < 0.5
    for _ in range(8):
        a = rng.uniform(0, 2 * math.pi)
        u = np.array([math.cos(a), math.sin(a)])
        v = np.array([-u[1], u[0]])
        centre = np.array([pose.x, pose.y]) + rng.uniform(0.35, 0.7) * part.r_max * u
        half_len, half_w = 1.3 * part.r_max, rng.uniform(0.06, 0.11) * part.s
        reach = half_len + half_w + 2
        x0, y0 = max(0, int(centre[0] - reach)), max(0, int(centre[1] - reach))
        x1, y1 = min(w, int(centre[0] + reach) + 1), min(h, int(centre[1] + reach) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        c = centre - (x0, y0)
        p1, p2 = c - half_len * v, c + half_len * v
        poly = stadium_polygon((p1[0], p1[1]), (p2[0], p2[1]), half_w)
        cov = fill_coverage((y1 - y0, x1 - x0), [poly])
        if gripper and (mask[y0:y1, x0:x1][cov > 0] > 0).any():
            continue
        region = img[y0:y1, x0:x1]
        if gripper:
            _draw_gripper(region, cov, c, u, half_w, rng)
        else:
            soft = gaussian(cov, 0.04 * part.s)
            region *= (1.0 - rng.uniform(0.35, 0.55) * soft)[..., None]
        return True
    return False


def _draw_gripper(
    region: np.ndarray,
    cov: np.ndarray,
    c: np.ndarray,
    u: np.ndarray,
    half_w: float,
    rng: np.random.Generator,
) -> None:
    """An anodised finger: dark, a soft highlight along its rounded length."""
    yy, xx = np.mgrid[0 : cov.shape[0], 0 : cov.shape[1]].astype(np.float32)
    across = ((xx - c[0]) * u[0] + (yy - c[1]) * u[1]) / half_w
    lum = rng.uniform(0.08, 0.16) + 0.12 * np.exp(-(((across - 0.3) / 0.35) ** 2))
    _blend(region, cov, lum.astype(np.float32), (1.0, 0.95, 0.9))


# ------------------------------------------------------------------------------- sensor


def expose(img: np.ndarray, gain: float, rng: np.random.Generator, bit_depth: int) -> np.ndarray:
    """Global gain drift, Gaussian read noise and quantisation to the sensor's bit depth.

    The noise comes from OpenCV's generator, seeded from ``rng``: about ten times faster than
    numpy's normal draws on a 1024x1024x3 frame. It reseeds OpenCV's (thread-local) RNG.
    """
    h, w, c = img.shape
    flat = img.reshape(h, w * c)  # one channel: cv2 per-channel scalars would skip the rest
    noise = np.empty_like(flat)
    cv2.setRNGSeed(int(rng.integers(1, 2**31 - 1)))
    cv2.randn(noise, np.zeros(1), np.ones(1))
    top = 255.0 if bit_depth == 8 else 65535.0
    g = gain * rng.uniform(1 - GAIN_JITTER, 1 + GAIN_JITTER)
    depth = cv2.CV_8U if bit_depth == 8 else cv2.CV_16U
    # One saturating, rounding pass: scale, add noise, clip and convert.
    out = cv2.addWeighted(flat, g * top, noise, NOISE_SIGMA * top, 0.0, dtype=depth)
    return out if c == 1 else out.reshape(h, w, c)
