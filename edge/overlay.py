"""Heatmap overlays a person can read: the anomaly map in colour over the part image.

Shared by `partsight inspect --heatmaps` and the trainer's report, so both pictures mean the same.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.regions import Region

COLORMAP = cv2.COLORMAP_TURBO  # the report's colour bars use matplotlib's "turbo" to match
ALPHA = 0.5
BOX_COLOUR = (255, 255, 255)


def to_bgr_uint8(image: np.ndarray, image_is_rgb: bool = False) -> np.ndarray:
    """Float [0, 1] or integer image, grey or 3-channel, as uint8 BGR."""
    img = np.asarray(image)
    if np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    img8 = (np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img8.ndim == 3 and img8.shape[2] == 1:
        img8 = img8[:, :, 0]
    if img8.ndim == 2:
        return cv2.cvtColor(img8, cv2.COLOR_GRAY2BGR)
    if img8.ndim == 3 and img8.shape[2] == 3:
        return cv2.cvtColor(img8, cv2.COLOR_RGB2BGR) if image_is_rgb else img8.copy()
    raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3); got {img.shape}")


def overlay_heatmap(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    vmax: float | None = None,
    *,
    regions: list[Region] | None = None,
    image_is_rgb: bool = False,
) -> np.ndarray:
    """uint8 BGR picture: the map as a TURBO heatmap blended over the image, regions boxed.

    The map is scaled to [0, vmax] (values above saturate) so colours mean the same on every
    picture; with vmax None each map uses its own maximum. A map of another size is resized to
    the image; regions are in the image's coordinates.
    """
    base = to_bgr_uint8(image, image_is_rgb)
    amap = np.nan_to_num(np.asarray(anomaly_map, dtype=np.float32))
    scale = float(amap.max()) if vmax is None else float(vmax)
    unit = np.clip(amap / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(amap)
    if unit.shape != base.shape[:2]:
        unit = cv2.resize(unit, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap((unit * 255.0 + 0.5).astype(np.uint8), COLORMAP)
    picture = cv2.addWeighted(base, 1.0 - ALPHA, heat, ALPHA, 0.0)
    for r in regions or []:
        cv2.rectangle(picture, (r.x, r.y), (r.x + r.width - 1, r.y + r.height - 1), BOX_COLOUR, 1)
    return picture


def map_in_frame(
    anomaly_map: np.ndarray, to_frame: np.ndarray, frame_size: tuple[int, int]
) -> np.ndarray:
    """The map of a registered part drawn where the part lies in the frame (frame_size = (W, H));
    zero elsewhere. `to_frame` is the 2x3 affine from map pixels to frame pixels."""
    return cv2.warpAffine(
        anomaly_map.astype(np.float32), to_frame, frame_size, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )  # fmt: skip
