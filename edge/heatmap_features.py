"""Features of an anomalous part for the heatmap classifier (paper §3.3): what the anomaly looks
like on the map and in the image, as float32 rows: one per region of the part's sharp residual
with the ``residual`` group, one for the part without it. numpy
and OpenCV only (no torch): the trainer calls these very functions on the edge runtime's
outputs, so train time and run time compute the same numbers.

The anomalous region. The map's pixels at or above the engine's pixel threshold
(`scoring.pixel_threshold`), or, when no pixel reaches it, at or above half the map's peak (a
part the score flags always has one). The *peak region* is the connected part of it (8-
neighbours) holding the map's highest pixel; the *union* is all of it.

Groups (a feature set, ``FeatureSet``, is one or more of them: ``hu``, ``residual``, ``cnn``,
``both`` = hu + cnn, ``all`` = the three; edge.manifest.FEATURE_GROUPS):

- ``hu`` (HU_COUNT values), the DAE map: Hu's seven moment invariants (Hu 1962;
  ``cv2.HuMoments``) of the peak region's silhouette and seven of the map inside it, each log-
  scaled with its sign kept (``signed_log10``); the region descriptors a vision engineer adds:
  area, peak and mean of the map (in pixel-threshold units), elongation (square root of the
  ratio of the region's second-moment eigenvalues), solidity (area over convex-hull area); how
  far the image departs from the good parts there, in units of the good parts' per-pixel spread
  — before and after undoing the frame's global brightness/contrast change (mean; and after:
  mean, lowest and highest: a dark pit goes negative, bright dust positive); and for the frame
  as a whole: that brightness and contrast change (least squares of the image on the good mean
  over the foreground outside the anomaly: image ≈ gain · mean + offset), the union's share of
  the foreground, the number of regions and log(score / threshold).
- ``residual`` (RESIDUAL_COUNT values per region), the corrected residual (edge.residual: the part
  against its own reconstruction once the light change is undone, split into a ``fine`` and a
  ``broad`` map, the fine one the sum of a ``bright`` and a ``dark`` map). A row for each region
  of the fine map at its level (the 99th percentile of good parts' fine peaks), cut through its
  bright and dark halves where those reach the level themselves, strongest first
  (edge.residual.sharp_regions: a bright fibre lying across a dark scratch is two rows). For the
  part, on every row: the light change (gain − 1, offset); the broad map's peak against the good
  parts' (log of peak / level, the level its 99th percentile); how many regions (the rows) and broad
  regions there are and their total area (log 1 + ·). For the region: its peak against the fine
  level; its area, elongation, solidity; the residual in it (mean, lowest, highest, in good-spread
  units, signed log 1 + ·), the balance of its bright and dark pixels and the residual in the ring
  of pixels around it (mean, highest: a dent's lit rim, which a speck of grime lacks); how sharp it
  is (the share of its residual energy above the broad map); whether it touches the foreground's
  border; the corrected luminance in it (lowest, highest, mean: a fibre's shade is its own, a
  scratch's follows the metal); the share of it, and of all the part's regions, over the
  foreground's dark phase (holes, the conveyor: where a fibre may lie and a scratch cannot); and how
  it runs (edge.residual.bend at a fifth of its peak: length, sagitta, wobble, width: a fibre lies
  in an arc, a scratch is straight, a crack wobbles).
- ``cnn`` (2 · Cf values): the DAE's own encoder (the engine's ``features`` output, stride 4)
  as the pre-trained network: its activations over the peak region, as departures from the
  good parts' mean activation in units of their spread, averaged (signed) and averaged in
  absolute value per channel.

Why a row per region. A part is as bad as its worst region: a scratch beside a dust speck is a
defect, whichever of the two is the stronger. The classifier judges every region and the part
takes the most defect-like answer (edge.stages.classify.part_classification); judging only the
strongest region passed a defect whenever a nuisance beside it was stronger.

``FEATURE_VERSION`` (edge.manifest) names this layout; a bundle whose classifier was trained
on another one is refused (BundleError) rather than fed features it does not know.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import cv2
import numpy as np

from edge.errors import BundleError
from edge.manifest import FEATURE_GROUPS, FeatureSet
from edge.residual import (
    ResidualMaps,
    SharpRegion,
    bend,
    corrected_residual,
    maps_of,
    region_at,
    residual_maps,
    sharp_regions,
)

FEATURE_SETS: tuple[str, ...] = get_args(FeatureSet)
HU_COUNT = 28
RESIDUAL_COUNT = 28
MAX_REGIONS = 32  # sharp regions (rows) a part may have for the classifier to judge it
_LEVEL_QUANTILE = 0.99  # of good parts' fine and broad peaks: the maps' levels
_LINE_FRACTION = 0.2  # of a region's peak: where a line-like region's extent is cut
_HU_FLOOR = 1e-12  # Hu moments below this magnitude count as 0 (signed_log10)
_STD_FLOOR_FRACTION = 0.1  # the good spread is floored at this fraction of its mean


def signed_log10(values: np.ndarray) -> np.ndarray:
    """sign(v) · log10(max(|v| / 1e-12, 1)): Hu moments span tens of decades, so they are
    compared on a log scale; the sign (which tells a shape from its mirror image, for the
    seventh) is kept, and magnitudes below 1e-12 map to 0 rather than to -inf."""
    magnitude = np.log10(np.maximum(np.abs(values) / _HU_FLOOR, 1.0))
    out: np.ndarray = np.sign(values) * magnitude
    return out


def _signed_log1p(values: np.ndarray | float) -> np.ndarray:
    out: np.ndarray = np.sign(values) * np.log1p(np.abs(values))
    return out


@dataclass(frozen=True)
class GoodReference:
    """The good parts' appearance at the model's resolution, the features' point of comparison.

    ``mean``/``std``: (H, W) float32, the luminance (mean over channels) of good model inputs,
    std floored at a tenth of its mean; ``foreground``: (H, W) bool, where the part is (the
    engine's scoring mask, or everywhere); ``dark_phase``: (H, W) bool, the foreground's darker
    pixels on the good mean (Otsu's threshold over the foreground: holes, the conveyor, for a
    bright part); ``residual_spread``: (H, W) float32, the per-pixel spread of good parts'
    corrected residual (edge.residual), floored likewise; ``fine_level``/``broad_level``: the
    99th percentile of good parts' fine and broad peaks; ``activation_mean``/``activation_std``:
    (Cf, Hf, Wf) float32, the same for the encoder's activations (None when the classifier uses
    none)."""

    mean: np.ndarray
    std: np.ndarray
    foreground: np.ndarray
    dark_phase: np.ndarray
    residual_spread: np.ndarray
    fine_level: float
    broad_level: float
    activation_mean: np.ndarray | None = None
    activation_std: np.ndarray | None = None

    @classmethod
    def from_good(
        cls,
        inputs: np.ndarray,
        reconstructions: np.ndarray,
        foreground: np.ndarray | None,
        activations: np.ndarray | None = None,
    ) -> GoodReference:
        """From good parts' model inputs and their reconstructions (N, C, H, W) float32 and, for
        CNN features, their encoder activations (N, Cf, Hf, Wf); ValueError for fewer than 2
        parts or reconstructions of another shape."""
        if len(inputs) < 2:
            raise ValueError(f"need at least 2 good parts for their spread, got {len(inputs)}")
        if reconstructions.shape != inputs.shape:
            raise ValueError(
                f"reconstructions {reconstructions.shape} do not fit the inputs {inputs.shape}"
            )
        lum = inputs.mean(axis=1)
        mean, std = lum.mean(axis=0), _floored(lum.std(axis=0))
        fg = np.ones(mean.shape, bool) if foreground is None else foreground.astype(bool)
        fits = [corrected_residual(x, r, fg) for x, r in zip(inputs, reconstructions, strict=True)]
        spread = _floored(np.stack([residual for residual, _ in fits]).std(axis=0))
        peaks = []  # (fine, broad) of each good part
        for residual, light in fits:
            maps = maps_of(residual, light, fg, spread)
            peaks.append((maps.fine.max(), maps.broad.max()))  # float32, as the maps
        fine, broad = (float(q) for q in np.quantile(np.array(peaks), _LEVEL_QUANTILE, axis=0))
        activation_mean = activation_std = None
        if activations is not None:
            activation_mean = activations.mean(axis=0).astype(np.float32)
            activation_std = _floored(activations.std(axis=0))
        return cls(
            mean.astype(np.float32), std, fg, _dark_phase(mean, fg), spread,
            max(fine, 1e-6), max(broad, 1e-6), activation_mean, activation_std,
        )  # fmt: skip

    def save(self, path: Path) -> None:
        """As a NumPy .npz (plain arrays: loaded without pickle)."""
        arrays: dict[str, Any] = {
            "mean": self.mean, "std": self.std, "foreground": self.foreground,
            "dark_phase": self.dark_phase, "residual_spread": self.residual_spread,
            "levels": np.array([self.fine_level, self.broad_level], np.float64),
        }  # fmt: skip
        if self.activation_mean is not None and self.activation_std is not None:
            arrays["activation_mean"] = self.activation_mean
            arrays["activation_std"] = self.activation_std
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        path.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: Path, shape: tuple[int, int]) -> GoodReference:
        """Read a saved reference for maps of `shape` (H, W); BundleError if it is unreadable,
        pickled, incomplete, or of another size."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: np.asarray(data[name]) for name in data.files}
        except (OSError, ValueError, KeyError) as exc:
            raise BundleError(f"{path}: not a readable feature reference ({exc})") from exc
        missing = set(_REFERENCE_ARRAYS) - set(arrays)
        if missing:
            raise BundleError(f"{path}: feature reference lacks {sorted(missing)}")
        for name in ("mean", "std", "foreground", "dark_phase", "residual_spread"):
            if arrays[name].shape != shape:
                raise BundleError(
                    f"{path}: feature reference is {arrays[name].shape}, the maps are {shape}"
                )
        levels = arrays["levels"].astype(np.float64)
        if levels.shape != (2,) or not np.all(np.isfinite(levels)) or not np.all(levels > 0):
            raise BundleError(f"{path}: feature reference levels {levels} are not 2 positives")
        return cls(
            arrays["mean"].astype(np.float32),
            arrays["std"].astype(np.float32),
            arrays["foreground"].astype(bool),
            arrays["dark_phase"].astype(bool),
            arrays["residual_spread"].astype(np.float32),
            float(levels[0]),
            float(levels[1]),
            arrays.get("activation_mean"),
            arrays.get("activation_std"),
        )


_REFERENCE_ARRAYS = ("mean", "std", "foreground", "dark_phase", "residual_spread", "levels")


def _dark_phase(mean: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """The foreground's pixels below Otsu's threshold of the good mean over the foreground."""
    levels = np.clip(mean[foreground] * 255.0, 0, 255).astype(np.uint8)
    if levels.size == 0:
        return np.zeros(mean.shape, bool)
    cut, _ = cv2.threshold(levels.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    out: np.ndarray = foreground & (mean * 255.0 <= cut)
    return out


def _floored(std: np.ndarray) -> np.ndarray:
    floor = _STD_FLOOR_FRACTION * float(std.mean()) + 1e-6
    out: np.ndarray = np.maximum(std, floor).astype(np.float32)
    return out


def feature_count(feature_set: str, activation_channels: int) -> int:
    """The width F of the (R, F) rows `features` returns for a feature set."""
    sizes = {"hu": HU_COUNT, "residual": RESIDUAL_COUNT, "cnn": 2 * activation_channels}
    return sum(sizes[group] for group in FEATURE_GROUPS[feature_set])


@dataclass(frozen=True)
class Region:
    """The anomalous region of a map (see the module docstring): bool (H, W) masks."""

    peak: np.ndarray
    union: np.ndarray
    count: int  # connected regions in the union
    level: float  # the map level it was cut at

    @property
    def area(self) -> int:
        """Pixels in the peak region (model-input pixels)."""
        return int(np.count_nonzero(self.peak))


def anomalous_region(anomaly_map: np.ndarray, pixel_threshold: float) -> Region:
    """The region of a (H, W) float32 map: at or above `pixel_threshold`, else at or above half
    the map's peak; at least the peak pixel itself."""
    peak_value = float(anomaly_map.max())
    level = pixel_threshold if peak_value >= pixel_threshold else 0.5 * peak_value
    peak, union, count = region_at(anomaly_map, pixel_threshold)
    return Region(peak, union, count, level)


@dataclass(frozen=True)
class PartView:
    """What the features are computed from, for one anomalous part: the map (H, W) float32,
    the model input and the DAE's reconstruction of it (C, H, W) float32 in [0, 1] (the
    reconstruction None unless residual features are asked for), the encoder's activations
    (Cf, Hf, Wf) float32 (None unless CNN features are asked for), the score and the thresholds
    it was judged by."""

    anomaly_map: np.ndarray
    image: np.ndarray
    reconstruction: np.ndarray | None
    activation: np.ndarray | None
    score: float
    threshold: float
    pixel_threshold: float


def features(
    feature_set: str, part: PartView, reference: GoodReference
) -> tuple[np.ndarray, Region]:
    """The part's feature rows, float32 (R, feature_count), and its anomalous region: a row per
    region of the sharp residual (strongest first) when the set has the ``residual`` group, the
    part-wide groups (``hu``, ``cnn``) repeated on each; one row otherwise. ValueError when the
    view does not fit the reference, residual features lack the reconstruction (or the part
    has more than MAX_REGIONS regions) or CNN features the activations."""
    shape = reference.mean.shape
    if part.anomaly_map.shape != shape or part.image.shape[1:] != shape:
        raise ValueError(
            f"map {part.anomaly_map.shape} / image {part.image.shape} do not fit the feature "
            f"reference {reference.mean.shape}"
        )
    if part.reconstruction is not None and part.reconstruction.shape != part.image.shape:
        raise ValueError(
            f"reconstruction {part.reconstruction.shape} does not fit the image {part.image.shape}"
        )
    if feature_set not in FEATURE_GROUPS:
        raise ValueError(f"unknown feature set {feature_set!r}; expected one of {FEATURE_SETS}")
    region = anomalous_region(part.anomaly_map, part.pixel_threshold)
    compute = {"hu": hu_features, "cnn": cnn_features}
    groups = [
        residual_features(part, reference) if group == "residual"
        else compute[group](part, region, reference)[None, :]
        for group in FEATURE_GROUPS[feature_set]
    ]  # fmt: skip
    return rows_of(groups).astype(np.float32), region


def rows_of(groups: Sequence[np.ndarray]) -> np.ndarray:
    """The groups of one part, each (1, Fg) part-wide or (R, Fg) per region, side by side as
    (R, ΣFg): the part-wide ones repeated on every region's row."""
    count = max(len(g) for g in groups)
    return np.concatenate([np.broadcast_to(g, (count, g.shape[1])) for g in groups], axis=1)


def hu_features(part: PartView, region: Region, reference: GoodReference) -> np.ndarray:
    """The ``hu`` group (module docstring), HU_COUNT float64 values."""
    amap = part.anomaly_map.astype(np.float64)
    unit = max(part.pixel_threshold, 1e-12)
    peak = region.peak
    shape_hu = cv2.HuMoments(cv2.moments(peak.astype(np.uint8), binaryImage=True)).ravel()
    map_hu = cv2.HuMoments(cv2.moments(np.where(peak, amap, 0.0), binaryImage=False)).ravel()
    area = float(np.count_nonzero(peak))
    inside = amap[peak]
    descriptors = [
        math.log1p(area),
        math.log1p(max(float(inside.max()), 0.0) / unit),
        math.log1p(max(float(inside.mean()), 0.0) / unit),
        _elongation(peak),
        _solidity(peak),
    ]
    lum = part.image.astype(np.float64).mean(axis=0)
    gain, offset = _global_change(lum, reference, region.union)
    raw = (lum - reference.mean) / reference.std
    corrected = (lum - (gain * reference.mean + offset)) / reference.std
    here = corrected[peak]
    departure = _signed_log1p(
        np.array([raw[peak].mean(), here.mean(), here.min(), here.max()], np.float64)
    )
    fg = max(int(np.count_nonzero(reference.foreground)), 1)
    shift = offset + (gain - 1.0) * float(reference.mean[reference.foreground].mean())
    frame = [
        shift,
        gain - 1.0,
        math.log1p(100.0 * np.count_nonzero(region.union & reference.foreground) / fg),
        math.log1p(region.count),
        math.log(max(part.score, 1e-12) / max(part.threshold, 1e-12)),
    ]
    out = np.concatenate(
        [signed_log10(shape_hu), signed_log10(map_hu), descriptors, departure, frame]
    )
    assert out.shape == (HU_COUNT,)
    return out


def residual_features(part: PartView, reference: GoodReference) -> np.ndarray:
    """The ``residual`` group (module docstring), float64 (R, RESIDUAL_COUNT): a row per region of
    the sharp residual, strongest first (1 <= R <= MAX_REGIONS). ValueError without the
    reconstruction, or for a part with more than MAX_REGIONS regions."""
    if part.reconstruction is None:
        raise ValueError("residual features need the DAE's reconstruction")
    fg = reference.foreground
    maps = residual_maps(part.image, part.reconstruction, fg, reference.residual_spread)
    broad = maps.broad
    regions, union = sharp_regions(maps, reference.fine_level)
    if len(regions) > MAX_REGIONS:
        raise ValueError(
            f"{len(regions)} separate anomalous regions, more than the {MAX_REGIONS} the "
            "classifier judges"
        )
    _, broad_union, broad_count = region_at(broad, reference.broad_level)
    light = maps.light
    frame = [
        light.gain - 1.0,
        light.offset,
        math.log(max(float(broad.max()), 1e-12) / reference.broad_level),
        math.log1p(len(regions)),
        math.log1p(float(np.count_nonzero(union))),
        math.log1p(broad_count),
        math.log1p(float(np.count_nonzero(broad_union))),
    ]
    lum = part.image.astype(np.float64).mean(axis=0)
    union_dark = float(reference.dark_phase[union].mean())  # the part's: the same on every row
    rows = [
        [*frame, *_sharp_region(region, maps, lum, union_dark, reference)] for region in regions
    ]
    out = np.array(rows, np.float64)
    assert out.shape == (len(regions), RESIDUAL_COUNT)
    return out


def _sharp_region(
    region: SharpRegion,
    maps: ResidualMaps,
    lum: np.ndarray,
    union_dark: float,
    reference: GoodReference,
) -> list[float]:
    """The features of one region of the part's sharp residual (module docstring)."""
    fg = reference.foreground
    peak, level_map = region.mask, region.level_map
    z = maps.z[peak].astype(np.float64)
    ring = cv2.dilate(peak.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~peak & fg
    around = maps.z[ring].astype(np.float64) if ring.any() else np.zeros(1)
    detail = (maps.z[peak] - maps.low[peak]).astype(np.float64)
    border = cv2.dilate(peak.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~fg
    corrected = (lum[peak] - maps.light.offset) / max(maps.light.gain, 1e-3)
    # How it runs: the region's own line on its own map, cut at a fifth of its peak.
    ys, xs = np.nonzero(peak)
    first = int(np.argmax(level_map[peak]))  # raster order: the first of equal maxima
    seed = (ys[first], xs[first])
    _, labels = cv2.connectedComponents(
        (level_map >= _LINE_FRACTION * region.peak).astype(np.uint8), connectivity=8
    )
    line = labels == labels[seed]
    return [
        math.log(max(region.peak, 1e-12) / reference.fine_level),
        math.log1p(float(np.count_nonzero(peak))),
        _elongation(peak),
        _solidity(peak),
        *_signed_log1p(np.array([z.mean(), z.min(), z.max()])),
        float(np.mean(z > 0)) - 0.5,
        *_signed_log1p(np.array([around.mean(), around.max()])),
        float((detail**2).sum() / max(float((z**2).sum()), 1e-12)),
        float(border.any()),
        float(corrected.min()),
        float(corrected.max()),
        float(corrected.mean()),
        float(reference.dark_phase[peak].mean()),
        union_dark,
        *bend(line, level_map),
    ]


def _elongation(mask: np.ndarray) -> float:
    """log sqrt(λ1 / λ2) of the region's pixel covariance (0 for a disc, large for a line)."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 2:
        return 0.0
    cov = np.cov(np.stack([xs, ys]).astype(np.float64)) + np.eye(2) / 12.0  # a pixel's own spread
    low, high = np.linalg.eigvalsh(cov)
    return 0.5 * math.log(high / low)


def _solidity(mask: np.ndarray) -> float:
    """Region area over the area of its convex hull (pixel squares): 1 for a convex blob, small
    for a curved fibre."""
    points = cv2.findNonZero(mask.astype(np.uint8))
    corners = points.reshape(-1, 1, 2) + np.array([[[0, 0], [1, 0], [0, 1], [1, 1]]])
    hull = cv2.convexHull(corners.reshape(-1, 1, 2).astype(np.float32))
    return float(min(1.0, np.count_nonzero(mask) / max(cv2.contourArea(hull), 1.0)))


def _global_change(
    lum: np.ndarray, reference: GoodReference, anomaly: np.ndarray
) -> tuple[float, float]:
    """(gain, offset) of lum ≈ gain · mean + offset over the foreground outside the anomaly
    (least squares); (1, 0) when too little is left to fit."""
    where = reference.foreground & ~anomaly
    if np.count_nonzero(where) < 16:
        where = reference.foreground
    x, y = reference.mean[where].astype(np.float64), lum[where]
    var = float(x.var())
    if var < 1e-12:
        return 1.0, float(y.mean() - x.mean())
    gain = float(((x - x.mean()) * (y - y.mean())).mean() / var)
    return gain, float(y.mean() - gain * x.mean())


def cnn_features(part: PartView, region: Region, reference: GoodReference) -> np.ndarray:
    """The ``cnn`` set (module docstring), 2 · Cf float64 values."""
    act, mean, std = part.activation, reference.activation_mean, reference.activation_std
    if act is None or mean is None or std is None:
        raise ValueError("CNN features need the encoder's activations and their good reference")
    if act.shape != mean.shape:
        raise ValueError(f"activations {act.shape} do not fit the reference {mean.shape}")
    cells = _cells(region.peak, act.shape[1:])
    z = (act[:, cells].astype(np.float64) - mean[:, cells]) / std[:, cells]
    out: np.ndarray = _signed_log1p(np.concatenate([z.mean(axis=1), np.abs(z).mean(axis=1)]))
    return out


def _cells(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """bool (Hf, Wf): the activation cells the region overlaps (at least one: the one holding
    the region's largest share)."""
    h, w = int(shape[0]), int(shape[1])
    share = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    cells = share > 0
    if not cells.any():
        cells[np.unravel_index(int(np.argmax(share)), share.shape)] = True
    return cells
