"""Picking pose candidates out of an accumulator's per-slice maxima."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.registration.pose import wrap_angle
from edge.registration.rtable import Hypotheses


@dataclass(frozen=True)
class Peak:
    """A vote peak: reference point at level pixel (x, y), hypothesis angle/scale, votes."""

    x: int
    y: int
    angle_deg: float
    scale: float
    votes: int


def select_peaks(
    best_val: np.ndarray,
    best_idx: np.ndarray,
    hyp: Hypotheses,
    origin: tuple[int, int],
    width: int,
    count: int,
    angle_sep_deg: float,
    dist_sep: float,
) -> list[Peak]:
    """Up to ``count`` strongest slice maxima, skipping any within ``angle_sep_deg`` and
    ``dist_sep`` pixels of a stronger one already taken (the same peak seen in a neighbouring
    slice). Ties go to the lower hypothesis index, so the choice is deterministic."""
    order = np.lexsort((np.arange(best_val.size), -best_val.astype(np.int64)))
    taken: list[Peak] = []
    for h in order.tolist():
        votes = int(best_val[h])
        if votes <= 0:
            break
        idx = int(best_idx[h])
        peak = Peak(
            x=origin[0] + idx % width,
            y=origin[1] + idx // width,
            angle_deg=float(hyp.angles_deg[h]),
            scale=float(hyp.scales[h]),
            votes=votes,
        )
        if any(_close(peak, t, angle_sep_deg, dist_sep) for t in taken):
            continue
        taken.append(peak)
        if len(taken) >= count:
            break
    return taken


def _close(a: Peak, b: Peak, angle_sep_deg: float, dist_sep: float) -> bool:
    return (
        abs(wrap_angle(a.angle_deg - b.angle_deg)) <= angle_sep_deg
        and (a.x - b.x) ** 2 + (a.y - b.y) ** 2 <= dist_sep**2
    )
