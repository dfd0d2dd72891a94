"""Synthetic datasets of rigid machined metal parts, as a line camera sees them.

One seed fixes one part family (silhouette, holes, slot, surface finish, palette);
:class:`PartGenerator` renders good parts, defects and nuisances of that family with their
pixel masks and true poses, and :func:`write_dataset` writes them in the MVTec AD layout::

    out/train/good/000.png
    out/test/<good|defect type|nuisance type>/000.png
    out/ground_truth/<defect or local nuisance type>/000_mask.png
    out/labels.csv            file,split,class,type,x,y,angle_deg
    out/synth_config.json     the configuration and seed, to regenerate the set

Rendering stays in numpy and OpenCV (no torch) so the edge side could reuse it. The
modules behind it: ``synth_design`` (geometry), ``synth_part`` (appearance layers),
``synth_anomaly`` (defects, nuisances), ``synth_scene`` (frame, clutter, sensor).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import shutil
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from trainer.progress import progress_bar
from trainer.synth_anomaly import PAINTERS
from trainer.synth_part import PartModel
from trainer.synth_scene import Scene, expose, occlude, place
from trainer.synth_types import (
    DEFECT_TYPES,
    KINDS,
    LOCAL_NUISANCE_TYPES,
    MIXED_TYPES,
    NUISANCE_TYPES,
    Pose,
    Sample,
    SynthConfig,
    canvas_centre,
    class_of,
    pose_matrix,
)

__all__ = [
    "DEFECT_TYPES",
    "KINDS",
    "LOCAL_NUISANCE_TYPES",
    "MIXED_TYPES",
    "NUISANCE_TYPES",
    "DatasetSummary",
    "PartGenerator",
    "Pose",
    "Sample",
    "SynthConfig",
    "pose_matrix",
    "write_dataset",
]

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("file", "split", "class", "type", "x", "y", "angle_deg")
_SPLIT_CODES = {"train": 0, "test": 1}


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


class PartGenerator:
    """Renders one part family (fixed by ``seed``) under ``config``."""

    def __init__(self, config: SynthConfig, seed: int) -> None:
        if not isinstance(config, SynthConfig):
            raise ValueError(f"config must be a SynthConfig, got {type(config).__name__}")
        part_seq, scene_seq = np.random.SeedSequence(_check_seed(seed)).spawn(2)
        self.config = config
        self.part = PartModel(config.size, part_seq, config.color)
        self._check_frame()
        self.scene = Scene(self.part, config, scene_seq)

    def _check_frame(self) -> None:
        w, h = self.config.frame_size
        if 2 * self.part.r_max > min(w, h) - 1:
            raise ValueError(
                f"frame {w}x{h} is too small for the part (extent {2 * self.part.r_max:.0f} px)"
            )

    def foreground_mask(self) -> np.ndarray:
        """uint8 (H, W) of the canonical view: 255 on the good part's material."""
        return self.part.foreground()

    def render(self, kind: str, rng: np.random.Generator) -> Sample:
        """One frame of ``kind`` ("good" or a defect/nuisance type)."""
        cls = class_of(kind)
        if not isinstance(rng, np.random.Generator):
            raise ValueError("rng must be a numpy Generator (np.random.default_rng(...))")
        # Separate streams: a defect image and a good image drawn from equal generators
        # share the same part, pose, background and noise, and differ only by the defect.
        base_rng, anomaly_rng, scene_rng, sensor_rng = (
            np.random.default_rng(int(s)) for s in rng.integers(0, 2**63, 4)
        )
        canvas = self.part.new_canvas(base_rng)
        if kind != "good":
            PAINTERS[kind](canvas, self.part, anomaly_rng)
        pose = self._pose(scene_rng)
        img = self.scene.background(scene_rng, pose)
        mask = place(img, canvas, pose, self.config.size)
        occluded = False
        if self.config.occlusion_prob > 0 and scene_rng.random() < self.config.occlusion_prob:
            occluded = occlude(img, mask, pose, self.part, scene_rng)
        image = expose(img, canvas.gain, sensor_rng, self.config.bit_depth)
        return Sample(image=image, mask=mask, pose=pose, cls=cls, type=kind, occluded=occluded)

    def _pose(self, rng: np.random.Generator) -> Pose:
        cfg = self.config
        w, h = cfg.frame_size
        r = self.part.r_max
        lo_x, hi_x, lo_y, hi_y = r, w - 1 - r, r, h - 1 - r
        if cfg.random_pose:
            angle = float(rng.uniform(0.0, 360.0))
            return Pose(float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)), angle)
        cx, cy = canvas_centre((w, h))
        j, jd = cfg.pose_jitter_px, cfg.pose_jitter_deg
        if j == 0 and jd == 0:
            return Pose(cx, cy, 0.0)
        x = min(max(cx + rng.uniform(-j, j), lo_x), hi_x)
        y = min(max(cy + rng.uniform(-j, j), lo_y), hi_y)
        return Pose(float(x), float(y), float(rng.uniform(-jd, jd)))


# ------------------------------------------------------------------------------ dataset


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` wrote: ``counts[split][type]`` images under ``path``."""

    path: Path
    counts: dict[str, dict[str, int]]
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(n for per_type in self.counts.values() for n in per_type.values())

    def __str__(self) -> str:
        """e.g. `wrote 500 images to data in 1.2 s: train good 200; test good 50, scratch 25`."""
        splits = "; ".join(
            f"{split} " + ", ".join(f"{kind} {n}" for kind, n in per_type.items())
            for split, per_type in self.counts.items()
        )
        return f"wrote {self.total} images to {self.path} in {self.seconds:.1f} s: {splits}"


@dataclass(frozen=True)
class _Item:
    split: str
    kind: str
    index: int
    width: int

    @property
    def name(self) -> str:
        return f"{self.index:0{self.width}d}"

    @property
    def file(self) -> str:
        return f"{self.split}/{self.kind}/{self.name}.png"


def plan_counts(count: int, test_per_type: int | None = None) -> dict[str, dict[str, int]]:
    """Images per split and type for a dataset with ``count`` training images; the test split
    has ``test_per_type`` images of each anomaly type (default: a tenth of ``count``, at least
    4) and a quarter of ``count`` good ones (at least 8, at least ``test_per_type``)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    if test_per_type is not None and (isinstance(test_per_type, bool) or test_per_type < 1):
        raise ValueError(f"test_per_type must be an int >= 1, got {test_per_type!r}")
    per_anomaly = max(4, count // 10) if test_per_type is None else test_per_type
    test = {"good": max(8, count // 4, test_per_type or 0)}
    test.update({t: per_anomaly for t in (*DEFECT_TYPES, *NUISANCE_TYPES)})
    return {"train": {"good": count}, "test": test}


def _items(counts: dict[str, dict[str, int]]) -> Iterator[_Item]:
    for split, per_type in counts.items():
        for kind, n in per_type.items():
            width = max(3, len(str(n - 1)))
            for i in range(n):
                yield _Item(split, kind, i, width)


def _item_rng(seed: int, item: _Item) -> np.random.Generator:
    # Keyed by (seed, split, type name, index): an image never depends on generation order,
    # nor on which other types exist.
    kind_key = zlib.crc32(item.kind.encode())
    return np.random.default_rng([seed, _SPLIT_CODES[item.split], kind_key, item.index])


def write_dataset(
    out: Path,
    count: int,
    config: SynthConfig,
    seed: int,
    progress: bool = True,
    overwrite: bool = False,
    test_per_type: int | None = None,
) -> DatasetSummary:
    """Render and write a dataset in the MVTec AD layout (see the module docstring).

    A previous synthetic dataset in ``out`` is replaced (only the folders and files this
    function writes); any other non-empty folder is refused unless ``overwrite``.
    """
    out = Path(out)
    counts = plan_counts(count, test_per_type)
    seed = _check_seed(seed)
    _prepare(out, overwrite)
    gen = PartGenerator(config, seed)
    items = list(_items(counts))
    started = time.perf_counter()
    rows: list[dict[str, str]] = []
    bar = progress_bar(len(items), "synthesising", unit="img", enabled=progress)
    try:
        for item in items:
            sample = gen.render(item.kind, _item_rng(seed, item))
            _write_sample(out, item, sample)
            rows.append(_label_row(item, sample))
            bar.update()
    finally:
        bar.close()
    _write_labels(out / "labels.csv", rows)
    _write_config(out / "synth_config.json", config, seed, count)
    elapsed = time.perf_counter() - started
    log.info("wrote %d images to %s in %.1f s", len(items), out, elapsed)
    return DatasetSummary(path=out, counts=counts, seconds=elapsed)


def _prepare(out: Path, overwrite: bool) -> None:
    """Make ``out`` ready; a previous synthetic set there is replaced, anything else refused."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        ours = (out / "synth_config.json").is_file()
        if not (ours or overwrite):
            raise ValueError(
                f"output directory {out} is not empty and holds no synthetic dataset; "
                "choose an empty folder (or pass overwrite=True)"
            )
        for sub in ("train", "test", "ground_truth"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for name in ("labels.csv", "synth_config.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _write_sample(out: Path, item: _Item, sample: Sample) -> None:
    path = out / item.file
    path.parent.mkdir(parents=True, exist_ok=True)
    _imwrite(path, sample.image)
    if item.kind in DEFECT_TYPES or item.kind in LOCAL_NUISANCE_TYPES:
        gt = out / "ground_truth" / item.kind / f"{item.name}_mask.png"
        gt.parent.mkdir(parents=True, exist_ok=True)
        _imwrite(gt, sample.mask)


def _imwrite(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _label_row(item: _Item, sample: Sample) -> dict[str, str]:
    return {
        "file": item.file,
        "split": item.split,
        "class": sample.cls,
        "type": sample.type,
        "x": f"{sample.pose.x:.3f}",
        "y": f"{sample.pose.y:.3f}",
        "angle_deg": f"{sample.pose.angle_deg:.3f}",
    }


def _write_labels(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _write_config(path: Path, config: SynthConfig, seed: int, count: int) -> None:
    doc = {"seed": seed, "count": count, "config": dataclasses.asdict(config)}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
