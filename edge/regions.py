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


def regions_to_frame(regions: list[Region], to_frame: np.ndarray) -> list[Region]:
    """Boxes mapped through a 2x3 affine (e.g. the registered pose): each becomes the axis-aligned
    box around its four transformed corners."""
    mapped = []
    scale = float(np.sqrt(abs(np.linalg.det(to_frame[:, :2]))))
    for r in regions:
        corners = np.array(
            [[r.x, r.y, 1], [r.x + r.width, r.y, 1], [r.x, r.y + r.height, 1],
             [r.x + r.width, r.y + r.height, 1]], dtype=np.float64,
        )  # fmt: skip
        xy = corners @ to_frame.T
        x0, y0 = np.floor(xy.min(axis=0)).astype(int)
        x1, y1 = np.ceil(xy.max(axis=0)).astype(int)
        mapped.append(
            Region(x=int(x0), y=int(y0), width=int(x1 - x0), height=int(y1 - y0), peak=r.peak,
                   area_px=round(r.area_px * scale * scale))
        )  # fmt: skip
    return mapped


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
