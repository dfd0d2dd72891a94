"""Heatmap overlays a person can read: the anomaly map in colour over the part image."""

from __future__ import annotations

import cv2
import numpy as np

from edge.regions import Region


def overlay_heatmap(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    vmax: float | None = None,
    regions: list[Region] | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """uint8 BGR picture of `image` (float [0,1], HxW or HxWx3) with the map blended over it.

    The map is scaled to vmax (e.g. twice the pixel threshold) when given, so colours mean the
    same on every picture; otherwise to its own maximum. Regions (in image coordinates) are boxed.
    """
    base = np.clip(image * 255.0, 0, 255).astype(np.uint8)
    if base.ndim == 2:
        base = cv2.cvtColor(base, cv2.COLOR_GRAY2BGR)
    amap = cv2.resize(anomaly_map.astype(np.float32), (base.shape[1], base.shape[0]))
    top = vmax if vmax and vmax > 0 else float(amap.max()) or 1.0
    heat = cv2.applyColorMap(np.clip(amap / top * 255.0, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    picture = cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)
    for r in regions or []:
        cv2.rectangle(picture, (r.x, r.y), (r.x + r.width - 1, r.y + r.height - 1), (255, 255, 255), 1)
    return picture
