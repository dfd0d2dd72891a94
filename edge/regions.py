"""The top anomaly regions of a map, as bounding boxes in the source image's coordinates."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    x: int  # left, source-image pixels
    y: int  # top
    width: int
    height: int
    peak: float  # highest map value inside
    area_px: int  # anomalous pixels, in source-image pixels

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def top_regions(
    anomaly_map: np.ndarray, level: float, source_size: tuple[int, int], limit: int = 5
) -> list[Region]:
    """Connected areas of the map at or above `level`, highest peak first.

    source_size is (width, height) of the image the map was computed from, so boxes can be drawn
    on the original frame even when the model runs at a lower resolution.
    """
    above = (anomaly_map >= level).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    if count <= 1:
        return []
    peaks = np.full(count, -np.inf, dtype=np.float64)
    np.maximum.at(peaks, labels.ravel().astype(np.intp), anomaly_map.ravel().astype(np.float64))
    sx = source_size[0] / anomaly_map.shape[1]
    sy = source_size[1] / anomaly_map.shape[0]
    regions = [
        Region(
            x=int(stats[i, cv2.CC_STAT_LEFT] * sx),
            y=int(stats[i, cv2.CC_STAT_TOP] * sy),
            width=max(1, round(stats[i, cv2.CC_STAT_WIDTH] * sx)),
            height=max(1, round(stats[i, cv2.CC_STAT_HEIGHT] * sy)),
            peak=float(peaks[i]),
            area_px=round(stats[i, cv2.CC_STAT_AREA] * sx * sy),
        )
        for i in range(1, count)
    ]
    regions.sort(key=lambda r: r.peak, reverse=True)
    return regions[:limit]
