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


def top_regions(anomaly_map: np.ndarray, level: float, limit: int = 5) -> list[Region]:
    """Connected areas of the map at or above `level`, highest peak first, in map pixels."""
    above = (anomaly_map >= level).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
    if count <= 1:
        return []
    peaks = np.full(count, -np.inf, dtype=np.float64)
    np.maximum.at(peaks, labels.ravel().astype(np.intp), anomaly_map.ravel().astype(np.float64))
    regions = [
        Region(
            x=int(stats[i, cv2.CC_STAT_LEFT]),
            y=int(stats[i, cv2.CC_STAT_TOP]),
            width=int(stats[i, cv2.CC_STAT_WIDTH]),
            height=int(stats[i, cv2.CC_STAT_HEIGHT]),
            peak=float(peaks[i]),
            area_px=int(stats[i, cv2.CC_STAT_AREA]),
        )
        for i in range(1, count)
    ]
    regions.sort(key=lambda r: r.peak, reverse=True)
    return regions[:limit]


def regions_to_frame(regions: list[Region], to_frame: np.ndarray) -> list[Region]:
    """Boxes in map pixels carried into frame pixels through a 2x3 affine (a resize, or the
    registered pose): each becomes the axis-aligned box around its transformed outline.

    Pixel centres sit at integer coordinates, so a box covering pixels x..x+w-1 spans
    [x - 0.5, x + w - 0.5]; a frame pixel belongs to the result when its centre lies inside.
    """
    mapped = []
    scale = float(np.sqrt(abs(np.linalg.det(to_frame[:, :2]))))
    for r in regions:
        x0, y0 = r.x - 0.5, r.y - 0.5
        x1, y1 = x0 + r.width, y0 + r.height
        corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64)
        xy = corners @ to_frame.T
        first = np.ceil(xy.min(axis=0) - 1e-9).astype(int)
        end = np.ceil(xy.max(axis=0) - 1e-9).astype(int)
        size = np.maximum(end - first, 1)
        mapped.append(
            Region(
                x=int(first[0]),
                y=int(first[1]),
                width=int(size[0]),
                height=int(size[1]),
                peak=r.peak,
                area_px=round(r.area_px * scale * scale),
            )
        )
    return mapped
