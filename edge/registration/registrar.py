"""Registering frames to a template: coarse-to-fine Generalized Hough voting, then sub-pixel
least-squares refinement, then the warp into the template window.

1. Coarse: at the template's coarsest pyramid level (template >= ~32 px across; level 3 for a
   256 px template, i.e. a 128x128 image of a 1024x1024 frame) every frame edge point votes
   over the whole frame x the whole angle range (angle step: about 1 px at the template's
   rim) x the optional scales. The strongest mutually distinct slice maxima (4) are the
   candidates.
2. Finer levels: each candidate is re-voted one level finer in a +-3 px window around its
   doubled position, over +-1 coarser angle step at the finer step, down to level 1. The
   candidates with the most votes go on (at most 2, and only those with 40% of the best).
3. Full resolution (``refine``): robust Gauss-Newton on point-to-edge distance along the
   template's edge normals; the favourite first, the runner-up only if the favourite is not
   confirmed. The fraction of template points confirmed is the confidence.
4. A part whose material leaves the frame cannot be inspected whole: its confidence is
   multiplied by ``CUT_PENALTY`` (so it is at most 0.25).

A Registrar keeps scratch buffers: use one per thread.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from edge.registration.edges import EdgePoints, edge_points
from edge.registration.errors import RegistrationError
from edge.registration.image import check_image, pyramid, to_grey
from edge.registration.peaks import Peak, select_peaks
from edge.registration.pose import Pose, Registration
from edge.registration.refine import refine, smooth
from edge.registration.rtable import RTable, angle_grid, build_rtable, hypotheses
from edge.registration.template import LevelModel, Template
from edge.registration.voter import Voter, make_voter
from edge.registration.warp import warp_to_template

log = logging.getLogger(__name__)

ORI_TOLERANCE_DEG = 5.0  # gradient-orientation noise tolerated on top of half an angle step
WINDOW = 3  # half-size (px) of the local vote window at finer levels
LOCAL_ANGLE_REACH = 1.0  # local votes cover the candidate angle +- this many coarser steps
CUT_PENALTY = 0.25  # confidence factor for a part whose material leaves the frame
REFINE_ITERATIONS = 6
REFINED_CANDIDATES = 2  # candidates refined at full resolution (the second only if needed)
GOOD_ENOUGH = 0.5  # a refined favourite this well confirmed is not second-guessed
LOCAL_CANDIDATES = 2  # candidates carried on after each finer level ...
KEEP_RATIO = 0.4  # ... if they have at least this fraction of the best one's votes


@dataclass(frozen=True)
class _Level:
    model: LevelModel
    table: RTable


class Registrar:
    """Registers frames against one template on one device (see the module docstring).

    ``device``: "cpu" (Numba, parallel), "cuda" (Numba-CUDA) or "auto". ``min_confidence``
    sets ``Registration.accepted``. ``candidates``: coarse peaks carried to the finer levels.
    ``border_tolerance``: fraction of the part's outline allowed outside the frame before it
    counts as cut. ``max_frame_points``: cap on coarse frame edge points (the strongest are
    kept), which bounds the time a very cluttered frame can take. ``finest_vote_level``: the
    local votes stop at this pyramid level (1: half resolution); the least-squares refinement
    takes over from there. ``last_timings`` holds the stage times (s) of the latest frame.
    """

    def __init__(
        self,
        template: Template,
        *,
        device: str = "cpu",
        min_confidence: float = 0.5,
        candidates: int = 4,
        border_tolerance: float = 0.01,
        max_frame_points: int = 6000,
        finest_vote_level: int = 1,
    ) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise RegistrationError(f"min_confidence {min_confidence} is not in [0, 1]")
        if candidates < 1 or max_frame_points < 1 or not 0.0 <= border_tolerance < 1.0:
            raise RegistrationError(
                f"candidates {candidates}, max_frame_points {max_frame_points} must be >= 1 and "
                f"border_tolerance {border_tolerance} in [0, 1)"
            )
        self.template = template
        self.min_confidence = float(min_confidence)
        self.candidates = int(candidates)
        self.border_tolerance = float(border_tolerance)
        self.max_frame_points = int(max_frame_points)
        self._voter: Voter = make_voter(device)
        self.device = self._voter.name
        self._levels = [_Level(m, _table(m)) for m in template.levels]
        coarse = template.levels[-1]
        a0, a1 = template.angle_range
        self._coarse_hyp = hypotheses(angle_grid(a0, a1, coarse.angle_step_deg), self._scales())
        self._outline = template.outline()
        self._mask = template.mask.copy()
        self._mask.flags.writeable = False  # handed out with every Registration
        # local votes go down to this level; below it the least-squares refinement takes over
        self._last_level = min(max(int(finest_vote_level), 0), template.coarse_level)
        self.last_timings: dict[str, float] = {}
        log.info(
            "registrar on %s: coarse level %d, %d hypotheses, %d fine points",
            self.device, template.coarse_level, len(self._coarse_hyp), len(template.fine),
        )  # fmt: skip

    def _scales(self) -> np.ndarray:
        s0, s1 = self.template.scale_range
        if s1 - s0 < 1e-9:
            return np.array([s0])
        n = max(1, math.ceil((s1 - s0) / self.template.scale_step))
        return np.linspace(s0, s1, n + 1)

    @property
    def _fit_scale(self) -> bool:
        return self.template.scale_range[1] - self.template.scale_range[0] > 1e-9

    def warmup(self) -> None:
        """Compile (or load from Numba's cache) every kernel on a frame drawn from the template's
        mask, so the first frame on the line runs at full speed."""
        t0 = time.perf_counter()
        w, h = self.template.size
        frame = np.zeros((h + 32, w + 32), np.uint8)
        frame[16 : 16 + h, 16 : 16 + w] = self.template.mask // 2 + 40
        self.register(frame)
        self.register(frame.astype(np.uint16) * 257)
        log.info("registration warm-up on %s took %.2f s", self.device, time.perf_counter() - t0)

    def register(self, frame: np.ndarray, *, warp: bool = True) -> Registration:
        """Register one frame; low confidence (never an exception) when there is no usable part.
        ``warp=False``: the pose only, no host crop (``aligned`` is None). RegistrationError only
        for input that is not an image registration can read."""
        frame = check_image(frame)
        t0 = time.perf_counter()
        grey = to_grey(frame)
        top = self.template.coarse_level
        pyr = pyramid(grey, top)
        t1 = time.perf_counter()
        peaks = self._coarse(pyr[top]) if len(pyr) > top else []
        t2 = time.perf_counter()
        for level in range(top - 1, self._last_level - 1, -1):
            peaks = self._local(pyr[level], level, peaks)
        t3 = time.perf_counter()
        pose, confidence = self._refine(grey, peaks)
        t4 = time.perf_counter()
        in_view = self._in_view(pose, grey.shape)
        if in_view < 1.0 - self.border_tolerance:
            confidence *= CUT_PENALTY
        aligned = (
            warp_to_template(frame, pose, self.template.ref, self.template.size) if warp else None
        )
        t5 = time.perf_counter()
        self.last_timings = {
            "pyramid": t1 - t0, "coarse": t2 - t1, "local": t3 - t2,
            "refine": t4 - t3, "warp": t5 - t4, "total": t5 - t0,
        }  # fmt: skip
        confidence = float(min(max(confidence, 0.0), 1.0))
        return Registration(
            pose=pose,
            confidence=confidence,
            aligned=aligned,
            mask=self._mask,
            accepted=confidence >= self.min_confidence,
            in_view=in_view,
        )

    # -- stages ----------------------------------------------------------------------------

    def _coarse(self, img: np.ndarray) -> list[Peak]:
        lvl = self._levels[-1]
        pts = _strongest(edge_points(img, lvl.model.edge_threshold), self.max_frame_points)
        if not len(pts):
            return []
        h, w = img.shape
        _, best_val, best_idx = self._voter.vote(pts, self._coarse_hyp, lvl.table, (0, 0), (h, w))
        return select_peaks(
            best_val, best_idx, self._coarse_hyp, (0, 0), w, self.candidates,
            angle_sep_deg=3.0 * lvl.model.angle_step_deg, dist_sep=0.25 * lvl.model.radius,
        )  # fmt: skip

    def _local(self, img: np.ndarray, level: int, peaks: list[Peak]) -> list[Peak]:
        """Each peak re-voted one level finer in a small window; the survivors, best first."""
        lvl = self._levels[level]
        coarser = self._levels[level + 1].model
        step = lvl.model.angle_step_deg
        n = max(1, math.ceil(LOCAL_ANGLE_REACH * coarser.angle_step_deg / step - 1e-9))
        ds = self.template.scale_step / 2 ** (self.template.coarse_level - level)
        reach = math.ceil(lvl.model.radius * self.template.scale_range[1]) + WINDOW + 3
        boxes = [_box(2 * p.x, 2 * p.y, reach, img.shape) for p in peaks]
        shared = _shared_edges(img, boxes, lvl.model.edge_threshold)
        size = 2 * WINDOW + 1
        out = []
        for p, box in zip(peaks, boxes, strict=False):
            if box is None:
                continue
            angles = p.angle_deg + step * np.arange(-n, n + 1)
            scales = np.array(
                [p.scale - ds, p.scale, p.scale + ds] if self._fit_scale else [p.scale]
            )
            hyp = hypotheses(angles, scales)
            pts = _inside(shared, box) if shared is not None else _edges_in(img, box, lvl.model)
            origin = (2 * p.x - WINDOW, 2 * p.y - WINDOW)
            _, best_val, best_idx = self._voter.vote(
                pts, hyp, lvl.table, origin, (size, size), ring=True
            )
            best = select_peaks(best_val, best_idx, hyp, origin, size, 1, 0.0, 0.0)
            if best:
                out.append(best[0])
        out.sort(key=lambda q: -q.votes)  # stable: ties keep the coarse order
        # Finer levels separate the part from look-alikes: drop the clearly weaker candidates.
        keep = [q for q in out if q.votes >= KEEP_RATIO * out[0].votes] if out else []
        return keep[:LOCAL_CANDIDATES]

    def _refine(self, grey: np.ndarray, peaks: list[Peak]) -> tuple[Pose, float]:
        h, w = grey.shape
        if not peaks:
            return Pose((w - 1) / 2.0, (h - 1) / 2.0, 0.0, 1.0), 0.0
        last = self._last_level  # level the peaks come from
        f = 2.0**last
        step = self._levels[last].model.angle_step_deg
        radius = 1.5 * f + 0.5 * math.radians(step) * self._levels[0].model.radius + 1.0
        best: tuple[Pose, float] | None = None
        for p in peaks[:REFINED_CANDIDATES]:
            start = Pose(p.x * f, p.y * f, p.angle_deg, p.scale)
            roi, origin = self._roi(grey, start, radius)
            if roi is None:
                continue
            pose, conf = refine(
                roi, origin, self.template.fine, start,
                radius=radius, iterations=REFINE_ITERATIONS, fit_scale=self._fit_scale,
            )  # fmt: skip
            if best is None or conf > best[1]:
                best = (pose, conf)
            if conf >= max(self.min_confidence, GOOD_ENOUGH):
                break  # the runner-up only matters when the favourite does not fit
        if best is None:
            p = peaks[0]
            return Pose(p.x * f, p.y * f, p.angle_deg, p.scale), 0.0
        pose, conf = best
        return Pose(pose.x, pose.y, _fold(pose.angle_deg, self.template.angle_range),
                    pose.scale), conf  # fmt: skip

    def _roi(
        self, grey: np.ndarray, pose: Pose, radius: float
    ) -> tuple[np.ndarray | None, tuple[int, int]]:
        """Smoothed crop of the frame covering the template at ``pose`` plus the search radius."""
        h, w = grey.shape
        reach = self._levels[0].model.radius * pose.scale + radius + 3 * self.template.fine_sigma
        reach += 4
        x0, y0 = max(int(pose.x - reach), 0), max(int(pose.y - reach), 0)
        x1, y1 = min(int(pose.x + reach) + 2, w), min(int(pose.y + reach) + 2, h)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None, (0, 0)
        return smooth(grey[y0:y1, x0:x1], self.template.fine_sigma), (x0, y0)

    def _in_view(self, pose: Pose, shape: tuple[int, ...]) -> float:
        """Fraction of the part's outline inside the frame at ``pose``."""
        if not len(self._outline):
            return 1.0
        a = math.radians(pose.angle_deg)
        c, s = math.cos(a) * pose.scale, math.sin(a) * pose.scale
        ox, oy = self._outline[:, 0], self._outline[:, 1]
        x = pose.x + c * ox + s * oy
        y = pose.y - s * ox + c * oy
        h, w = shape[:2]
        inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
        return float(inside.mean())


def _table(model: LevelModel) -> RTable:
    tol = 0.5 * model.angle_step_deg + ORI_TOLERANCE_DEG
    n_bins = max(8, round(360.0 / tol))
    return build_rtable(model.dx, model.dy, model.ori, n_bins, tol)


def _box(cx: int, cy: int, reach: int, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the square of half-size ``reach`` around (cx, cy), clipped."""
    h, w = shape[:2]
    x0, y0 = max(cx - reach, 0), max(cy - reach, 0)
    x1, y1 = min(cx + reach + 1, w), min(cy + reach + 1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    return x0, y0, x1, y1


def _edges_in(img: np.ndarray, box: tuple[int, int, int, int], model: LevelModel) -> EdgePoints:
    x0, y0, x1, y1 = box
    return edge_points(img[y0:y1, x0:x1], model.edge_threshold, x0, y0)


def _shared_edges(
    img: np.ndarray, boxes: list[tuple[int, int, int, int] | None], threshold: float
) -> EdgePoints | None:
    """Edges of the union of the boxes when that is cheaper than one extraction per box (the
    candidates usually sit on the same part); None otherwise."""
    real = [b for b in boxes if b is not None]
    if len(real) < 2:
        return None
    x0, y0 = min(b[0] for b in real), min(b[1] for b in real)
    x1, y1 = max(b[2] for b in real), max(b[3] for b in real)
    if (x1 - x0) * (y1 - y0) > sum((b[2] - b[0]) * (b[3] - b[1]) for b in real):
        return None
    return edge_points(img[y0:y1, x0:x1], threshold, x0, y0)


def _inside(points: EdgePoints, box: tuple[int, int, int, int]) -> EdgePoints:
    x0, y0, x1, y1 = box
    keep = (points.x >= x0) & (points.x < x1) & (points.y >= y0) & (points.y < y1)
    return EdgePoints(points.x[keep], points.y[keep], points.ori[keep], points.mag[keep])


def _strongest(points: EdgePoints, cap: int) -> EdgePoints:
    """At most ``cap`` points, the strongest, in their original (raster) order."""
    if len(points) <= cap:
        return points
    keep = np.sort(np.argpartition(-points.mag, cap - 1)[:cap])
    return EdgePoints(points.x[keep], points.y[keep], points.ori[keep], points.mag[keep])


def _fold(angle_deg: float, angle_range: tuple[float, float]) -> float:
    """Angle expressed in the template's range where possible (e.g. [0, 360) or [-10, 10])."""
    a0, a1 = angle_range
    if a1 - a0 >= 360.0 - 1e-9:
        return (angle_deg - a0) % 360.0 + a0
    mid = 0.5 * (a0 + a1)
    return (angle_deg - mid + 180.0) % 360.0 - 180.0 + mid
