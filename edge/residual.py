"""The part's residual against its own reconstruction, once the frame's light change is undone:
what the heatmap classifier (edge.heatmap_features) looks at to tell a light change, a stain, a
speck and a line apart. numpy and OpenCV only.

Why. The DAE reconstructs a good part at the good parts' usual brightness, so a frame lit 15 %
brighter leaves a residual over the whole part and the anomaly map lights up everywhere: a
light change looks like a huge anomaly, and a defect on a brighter frame hides in it. Undoing
the light change first (a robust fit of image ≈ gain · reconstruction + offset) leaves nothing
of a pure light change and leaves a defect as it is.

Maps, all (H, W) float32 at the model's resolution:

- ``z``: the corrected residual, image − (gain · reconstruction + offset), luminance (mean over
  channels), in units of the good parts' own per-pixel residual spread, 0 outside the
  foreground;
- ``broad = G6(z)²``: what is large and smooth (an oil film, a shading), G6 a Gaussian blur of
  σ = 6 px;
- ``fine = G1.5((z − G6(z))²)``: what is small and sharp (a scratch, a pit, a fibre, a speck);
  it is the sum of ``bright = G1.5(max(z − G6(z), 0)²)`` and ``dark = G1.5(min(z − G6(z), 0)²)``,
  the sharp residual above and below the part's own, kept apart so that a bright fibre lying
  across a dark scratch makes two regions, not one.

The gain/offset fit: least squares over the foreground, refitted twice on the pixels within 3
robust standard deviations (1.4826 · MAD) of the previous fit, so a defect does not drag it
(iteratively trimmed least squares; Rousseeuw & Leroy 1987, "Robust regression and outlier
detection").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

BROAD_SIGMA = 6.0  # px: larger than any speck or line width, smaller than a stain
FINE_SIGMA = 1.5  # px: pools a line's two edges into one ridge
_TRIM = 3.0  # robust standard deviations kept by the photometric refit
_REFITS = 2


@dataclass(frozen=True)
class Photometric:
    """image ≈ gain · reconstruction + offset (luminance in [0, 1])."""

    gain: float
    offset: float


def photometric_fit(lum: np.ndarray, reconstructed: np.ndarray, where: np.ndarray) -> Photometric:
    """The light change between a part's luminance and its reconstruction's, (H, W) float32
    each, fitted over the bool (H, W) `where` (module docstring); (1, 0) when `where` holds
    fewer than 16 pixels or the reconstruction is flat there."""
    keep = where.copy()
    gain, offset = 1.0, 0.0
    for _ in range(_REFITS + 1):
        if np.count_nonzero(keep) < 16:
            break
        x = reconstructed[keep].astype(np.float64)
        y = lum[keep].astype(np.float64)
        var = float(x.var())
        if var < 1e-12:
            break
        gain = float(((x - x.mean()) * (y - y.mean())).mean() / var)
        offset = float(y.mean() - gain * x.mean())
        residual = lum[where] - (gain * reconstructed[where] + offset)
        spread = 1.4826 * float(np.median(np.abs(residual))) + 1e-6
        keep = where & (np.abs(lum - (gain * reconstructed + offset)) < _TRIM * spread)
    return Photometric(gain, offset)


def corrected_residual(
    image: np.ndarray, reconstruction: np.ndarray, foreground: np.ndarray
) -> tuple[np.ndarray, Photometric]:
    """(H, W) float32 image − (gain · reconstruction + offset) in luminance, and the fit;
    `image` and `reconstruction` (C, H, W) float32, `foreground` (H, W) bool."""
    lum = image.mean(axis=0, dtype=np.float32)
    reconstructed = reconstruction.mean(axis=0, dtype=np.float32)
    fit = photometric_fit(lum, reconstructed, foreground)
    out: np.ndarray = (lum - (fit.gain * reconstructed + fit.offset)).astype(np.float32)
    return out, fit


@dataclass(frozen=True)
class ResidualMaps:
    """A part's ``z``, ``bright`` and ``dark`` maps, ``low`` = G6(z) (module docstring), and its
    light change."""

    z: np.ndarray
    low: np.ndarray
    bright: np.ndarray
    dark: np.ndarray
    light: Photometric

    @property
    def fine(self) -> np.ndarray:
        out: np.ndarray = self.bright + self.dark
        return out

    @property
    def broad(self) -> np.ndarray:
        out: np.ndarray = self.low**2
        return out


def residual_maps(
    image: np.ndarray, reconstruction: np.ndarray, foreground: np.ndarray, spread: np.ndarray
) -> ResidualMaps:
    """The maps of one part: `image`, `reconstruction` (C, H, W) float32 in [0, 1];
    `foreground` (H, W) bool; `spread` (H, W) float32 > 0, the good parts' residual spread."""
    residual, light = corrected_residual(image, reconstruction, foreground)
    return maps_of(residual, light, foreground, spread)


def maps_of(
    residual: np.ndarray, light: Photometric, foreground: np.ndarray, spread: np.ndarray
) -> ResidualMaps:
    """The maps of a corrected residual (H, W) float32 (corrected_residual) and its fit;
    `foreground` and `spread` as residual_maps."""
    z = np.where(foreground, residual / spread, 0.0).astype(np.float32)
    low = cv2.GaussianBlur(z, (0, 0), BROAD_SIGMA)
    detail = z - low
    bright = cv2.GaussianBlur(np.maximum(detail, 0.0) ** 2, (0, 0), FINE_SIGMA)
    dark = cv2.GaussianBlur(np.minimum(detail, 0.0) ** 2, (0, 0), FINE_SIGMA)
    return ResidualMaps(z, low, bright, dark, light)


def region_at(level_map: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(the connected region (8-neighbours) holding the map's highest pixel, every pixel at or
    above the level, how many connected regions those make), bool (H, W) masks; the level is
    `level`, or half the map's peak when the peak does not reach it."""
    count, labels, top, union, _ = _components(level_map, level)
    return labels == labels[top], union, count - 1


def regions_at(level_map: np.ndarray, level: float) -> tuple[list[np.ndarray], np.ndarray]:
    """(every connected region (8-neighbours) of the (H, W) map at or above `level`, strongest
    peak first, each a bool (H, W) mask; their union). When the map's peak does not reach the
    level, one region: the one around the peak at half of it (a part the score flags always has
    one; below the level, the map's other bumps are the good parts' own noise)."""
    ranked, union = _ranked(level_map, level)
    return [mask for mask, _ in ranked], union


def _ranked(
    level_map: np.ndarray, level: float
) -> tuple[list[tuple[np.ndarray, float]], np.ndarray]:
    """regions_at's regions with their peaks, (mask, peak) each; and their union."""
    count, labels, top, union, reached = _components(level_map, level)
    if not reached:
        only = labels == labels[top]
        return [(only, float(level_map[top]))], only
    # The strongest first, by each region's own peak (a label-wise maximum).
    peaks = np.full(count, -np.inf)
    np.maximum.at(peaks, labels[union].astype(np.intp), level_map[union])
    order = [int(k) for k in np.argsort(-peaks[1:], kind="stable") + 1]
    return [(labels == k, float(peaks[k])) for k in order], union


def _components(
    level_map: np.ndarray, level: float
) -> tuple[int, np.ndarray, tuple[int, ...], np.ndarray, bool]:
    """The connected components (8-neighbours) of the map at or above `level`, or at or above
    half its peak when the peak does not reach it, with the highest pixel always in: (label
    count incl. the background, labels, the highest pixel, the union, whether the peak reached
    the level)."""
    peak = float(level_map.max())
    reached = peak >= level
    cut = level if reached else 0.5 * peak
    union = level_map >= cut if peak > 0 else np.zeros(level_map.shape, bool)
    top = tuple(int(i) for i in np.unravel_index(int(np.argmax(level_map)), level_map.shape))
    union[top] = True
    count, labels = cv2.connectedComponents(union.astype(np.uint8), connectivity=8)
    return count, labels, top, union, reached


@dataclass(frozen=True)
class SharpRegion:
    """One region of a part's sharp residual: a bool (H, W) mask, the map it was cut from (the
    ``bright``, the ``dark`` or the ``fine`` map: sharp_regions) and its peak there."""

    mask: np.ndarray
    level_map: np.ndarray
    peak: float


def sharp_regions(maps: ResidualMaps, level: float) -> tuple[list[SharpRegion], np.ndarray]:
    """(the part's sharp regions, strongest first; their union, bool (H, W)): every region of the
    fine map at or above `level`, judged through the regions of its bright and dark halves where
    those reach the level themselves (a bright fibre over a dark scratch: two regions, which the
    fine map alone merges into one), and whole where neither half does (a dent's dark floor and
    lit rim may each stay below the level that their sum passes). When the fine map does not
    reach the level, one region: the one around its peak at half of it (regions_at)."""
    found = [
        SharpRegion(mask, level_map, peak)
        for level_map in (maps.bright, maps.dark)
        if float(level_map.max()) >= level
        for mask, peak in _ranked(level_map, level)[0]
    ]
    covered = np.logical_or.reduce([r.mask for r in found]) if found else None
    fine = maps.fine
    for mask, peak in _ranked(fine, level)[0]:
        if covered is None or not (mask & covered).any():
            found.append(SharpRegion(mask, fine, peak))
    found.sort(key=lambda r: -r.peak)
    return found, np.logical_or.reduce([r.mask for r in found])


def bend(mask: np.ndarray, weight: np.ndarray) -> tuple[float, float, float, float]:
    """How a line-like region runs: (log(1 + length), sagitta / length, rms wobble / length,
    width), lengths in pixels. The region's pixels, weighted by `weight` (H, W), are put on
    their principal axis u and its normal v, and v = a·u² + b·u + c is fitted (weighted least
    squares): the sagitta is |a|·(length/2)², how far the middle of the fitted arc lies from its
    chord; the wobble is what the parabola leaves; the width is area / length. A straight
    scratch has a sagitta near 0, a fibre lying in an arc a tenth of its length; a crack's
    random walk wobbles. Zeros for fewer than 5 pixels."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 5:
        return 0.0, 0.0, 0.0, 0.0
    w = np.maximum(weight[ys, xs].astype(np.float64), 0.0) + 1e-12
    w /= w.sum()
    points = np.stack([xs, ys], axis=1).astype(np.float64)
    d = points - (points * w[:, None]).sum(axis=0)
    _, axes = np.linalg.eigh((d * w[:, None]).T @ d)
    u, v = d @ axes[:, 1], d @ axes[:, 0]
    root = np.sqrt(w)
    design = np.stack([u * u, u, np.ones_like(u)], axis=1) * root[:, None]
    a, b, c = np.linalg.lstsq(design, v * root, rcond=None)[0]
    length = float(u.max() - u.min()) + 1.0
    wobble = math.sqrt(float((w * (v - (a * u * u + b * u + c)) ** 2).sum()))
    return (
        math.log1p(length),
        abs(float(a)) * (length / 2) ** 2 / length,
        wobble / length,
        len(xs) / length,
    )
