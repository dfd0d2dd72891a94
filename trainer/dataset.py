"""Datasets in the MVTec AD folder layout, mono or colour, 8- or 16-bit, with or without masks.

    root/train/good/*.png              good parts only: what the model learns
    root/test/good/*.png               held-out good parts
    root/test/<type>/*.png             anomalous parts, one folder per type
    root/ground_truth/<type>/<name>_mask.png   pixel masks (optional: pixel metrics are then null)
    root/labels.csv                    optional: file,split,class,type[,x,y,angle_deg]

Without labels.csv every type other than `good` counts as a defect; labels.csv can mark types as
`nuisance` (anomalies that are not defects, e.g. dust).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.errors import ImageError
from edge.images import IMAGE_SUFFIXES, read_image
from trainer.errors import DatasetError

log = logging.getLogger(__name__)

CLASSES = ("good", "defect", "nuisance")


@dataclass(frozen=True)
class Item:
    file: str  # relative to the dataset root, POSIX separators
    split: str  # train | test
    cls: str  # good | defect | nuisance
    type: str  # good, or the anomaly type (the folder name)
    mask: str | None  # relative path of the ground-truth mask, if there is one


@dataclass(frozen=True)
class Dataset:
    root: Path
    items: tuple[Item, ...]

    @property
    def train(self) -> list[Item]:
        return [i for i in self.items if i.split == "train"]

    @property
    def test(self) -> list[Item]:
        return [i for i in self.items if i.split == "test"]

    @classmethod
    def load(cls, root: Path | str, need_test: bool = False) -> Dataset:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: dataset folder not found")
        good = root / "train" / "good"
        if not good.is_dir():
            raise DatasetError(f"{root}: missing folder train/good (MVTec AD layout expected)")
        labels = _read_labels(root / "labels.csv")
        items = [_item(root, p, "train", "good", labels) for p in _images_in(good)]
        if not items:
            raise DatasetError(f"{good}: no training images")
        test = root / "test"
        if need_test and not test.is_dir():
            raise DatasetError(f"{root}: missing folder test/")
        if test.is_dir():
            for folder in sorted(p for p in test.iterdir() if p.is_dir()):
                items.extend(
                    _item(root, p, "test", folder.name, labels) for p in _images_in(folder)
                )
        dataset = cls(root=root, items=tuple(items))
        if need_test and not dataset.test:
            raise DatasetError(f"{test}: no test images")
        return dataset

    def read(self, item: Item) -> np.ndarray:
        try:
            return read_image(self.root / item.file)
        except ImageError as exc:
            raise DatasetError(str(exc)) from exc

    def read_mask(self, item: Item, size: tuple[int, int] | None = None) -> np.ndarray | None:
        """Bool mask of the anomaly (all False for good parts), resized to size=(W, H) if given;
        None when an anomalous item has no mask file."""
        if item.cls == "good":
            shape = (size[1], size[0]) if size else self.read(item).shape[:2]
            return np.zeros(shape, dtype=bool)
        if item.mask is None:
            return None
        try:
            mask = read_image(self.root / item.mask)
        except ImageError as exc:
            raise DatasetError(str(exc)) from exc
        if mask.ndim == 3:
            mask = mask.max(axis=2)
        if size and mask.shape[:2] != (size[1], size[0]):
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        return mask > 0


def read_uniform(dataset: Dataset, items: Sequence[Item]) -> list[np.ndarray]:
    """Read images that must share one size, channel count and bit depth (the model needs one)."""
    images: list[np.ndarray] = []
    for item in items:
        image = dataset.read(item)
        if images and (image.shape != images[0].shape or image.dtype != images[0].dtype):
            first = images[0]
            raise DatasetError(
                f"{dataset.root / item.file}: {_describe(image)} differs from "
                f"{dataset.root / items[0].file}: {_describe(first)} (the model needs one size)"
            )
        images.append(image)
    return images


def _describe(image: np.ndarray) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"{image.shape[1]}x{image.shape[0]}, {channels} channel(s), {image.dtype}"


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _read_labels(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from exc
    for line, row in enumerate(rows, start=2):
        if not row.get("file") or row.get("class") not in CLASSES:
            raise DatasetError(f"{path}:{line}: need a file and a class in {CLASSES}")
    return {row["file"]: row for row in rows}


def _item(
    root: Path, path: Path, split: str, type_: str, labels: dict[str, dict[str, str]]
) -> Item:
    file = path.relative_to(root).as_posix()
    row = labels.get(file)
    cls = row["class"] if row else ("good" if type_ == "good" else "defect")
    mask = root / "ground_truth" / type_ / f"{path.stem}_mask.png"
    return Item(
        file=file,
        split=split,
        cls=cls,
        type=type_,
        mask=mask.relative_to(root).as_posix() if type_ != "good" and mask.is_file() else None,
    )
