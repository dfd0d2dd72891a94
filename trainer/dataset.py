"""Datasets in the MVTec AD folder layout, mono or colour, 8- or 16-bit, with or without masks.

    root/train/good/*.png              good parts only: what the model learns
    root/test/good/*.png               held-out good parts
    root/test/<type>/*.png             anomalous parts, one folder per type
    root/ground_truth/<type>/<name>_mask.png   pixel masks (optional: pixel metrics are then null)
    root/labels.csv                    optional: file,split,class,type[,x,y,angle_deg]

Without labels.csv every type other than `good` counts as a defect; labels.csv can mark types as
`nuisance` (anomalies that are not defects, e.g. dust). labels.csv may start with a UTF-8
byte-order mark (spreadsheets add one).

Images are listed and read by the one reader (edge.images): any suffix case, symbolic links
followed, a broken link named as an error when it is read; files passed over (other suffixes,
hidden files such as macOS `._000.png` copies) are named in a warning.

Masks are binary by intent: a mask re-saved lossily (JPEG halo: values other than 0 and 255) is
thresholded at half its range (> 127 for 8-bit, > 32767 for 16-bit; > 0 for a 0/1 label image).
`<name>_mask.<any image suffix>` is found in any letter case. mask_problem() says when a mask
covers almost nothing or almost all of its image (inverted?) or has another size.
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
from edge.images import IMAGE_SUFFIXES, find_images, read_image
from trainer.errors import DatasetError

log = logging.getLogger(__name__)

CLASSES = ("good", "defect", "nuisance")
MASK_SUFFIX = "_mask"
# A mask covering fewer pixels than this (and than this fraction of its image) covers "almost
# nothing"; one covering more than ALMOST_ALL of its image is probably inverted.
ALMOST_NOTHING_PIXELS, ALMOST_NOTHING_FRACTION = 4, 1e-5
ALMOST_ALL = 0.9


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
    def load(cls, root: Path | str, need_test: bool = False, need_train: bool = True) -> Dataset:
        """The dataset at `root` (MVTec AD layout); DatasetError, naming what is missing, when
        train/good (unless not `need_train`: scoring test/ alone) or, with `need_test`, test/
        has no images."""
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: dataset folder not found")
        good = root / "train" / "good"
        if need_train and not good.is_dir():
            raise DatasetError(f"{root}: missing folder train/good (MVTec AD layout expected)")
        labels = _read_labels(root / "labels.csv")
        masks = _MaskIndex(root / "ground_truth")
        train = _images_in(good) if good.is_dir() else []
        items = [_item(root, p, "train", "good", labels, masks) for p in train]
        if need_train and not items:
            raise DatasetError(f"{good}: no training images")
        test = root / "test"
        if need_test and not test.is_dir():
            raise DatasetError(f"{root}: missing folder test/")
        if test.is_dir():
            for folder in sorted(p for p in test.iterdir() if p.is_dir()):
                if folder.name.startswith("."):  # .ipynb_checkpoints is not an anomaly type
                    log.warning("%s: skipped: hidden", folder)
                    continue
                items.extend(
                    _item(root, p, "test", folder.name, labels, masks) for p in _images_in(folder)
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
        None when an anomalous item has no mask file. Thresholded at half the mask's range
        (binary_mask)."""
        if item.cls == "good":
            shape = (size[1], size[0]) if size else self.read(item).shape[:2]
            return np.zeros(shape, dtype=bool)
        if item.mask is None:
            return None
        try:
            mask = binary_mask(read_image(self.root / item.mask))
        except ImageError as exc:
            raise DatasetError(str(exc)) from exc
        if size and mask.shape[:2] != (size[1], size[0]):
            resized = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
            mask = resized.astype(bool)
        return mask

    @property
    def defects_without_mask(self) -> list[Item]:
        """Defective test images that have no ground-truth mask (pixel metrics need them all)."""
        return [i for i in self.test if i.cls == "defect" and i.mask is None]


def binary_mask(mask: np.ndarray) -> np.ndarray:
    """bool (H, W) from a stored mask, (H, W) or (H, W, 3), uint8 or uint16: True where the
    value lies in the upper half of the mask's range (> 127 of 255, > 32767 of 65535), so the
    halo a lossy re-save leaves around a 0/255 mask stays out of it. A mask stored as 0/1 (a
    label image) has the range 0..1, so 1 is True."""
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    top = 1 if int(mask.max()) <= 1 else np.iinfo(mask.dtype).max
    return np.asarray(mask > top / 2)


def mask_problem(mask: np.ndarray, image_shape: tuple[int, ...] | None = None) -> str | None:
    """What looks wrong with a (binary) defect mask, in a few words, or None: it covers almost
    nothing (a speck, or an empty mask), almost all of the image (inverted: the defect drawn
    black on white?), or has another size than its image (`image_shape`, (H, W, ...))."""
    if image_shape is not None and mask.shape[:2] != tuple(image_shape[:2]):
        h, w = mask.shape[:2]
        return f"is {h}x{w} (HxW), its image {image_shape[0]}x{image_shape[1]}: stretched to fit"
    covered = int(np.count_nonzero(mask))
    if covered == 0:
        return "is empty: it marks no defect pixel"
    if covered < max(ALMOST_NOTHING_PIXELS, ALMOST_NOTHING_FRACTION * mask.size):
        return f"covers almost nothing ({covered} pixel{'s' if covered > 1 else ''})"
    if covered > ALMOST_ALL * mask.size:
        return (
            f"covers {covered / mask.size:.0%} of the image: inverted (defect drawn black on "
            "white)?"
        )
    return None


def read_uniform(
    dataset: Dataset, items: Sequence[Item], one_size: bool = True
) -> list[np.ndarray]:
    """Read images that must share one channel count and pixel type, and one size unless
    `one_size` is False (the model needs one of each; sizes can be resized to one). DatasetError
    names the first image that differs."""
    images: list[np.ndarray] = []
    for item in items:
        image = dataset.read(item)
        if images:
            first = images[0]
            layout = image.shape[2:] != first.shape[2:] or image.ndim != first.ndim
            if image.dtype != first.dtype or layout or (one_size and image.shape != first.shape):
                need = (
                    "one size, channel count and pixel type"
                    if one_size
                    else ("one channel count and pixel type")
                )
                raise DatasetError(
                    f"{dataset.root / item.file}: {_describe(image)} differs from "
                    f"{dataset.root / items[0].file}: {_describe(first)} (the model needs {need})"
                )
        images.append(image)
    return images


def _describe(image: np.ndarray) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"{image.shape[1]}x{image.shape[0]}, {channels} channel(s), {image.dtype}"


def _images_in(folder: Path) -> list[Path]:
    """The folder's image files (broken links included: reading one names it); what is passed
    over is named in a warning."""
    listing = find_images([folder], recursive=False)
    for path, why in listing.skipped:
        log.warning("%s: skipped: %s", path, why)
    return list(listing.files)


def _read_labels(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from exc
    for line, row in enumerate(rows, start=2):
        if not row.get("file") or row.get("class") not in CLASSES:
            raise DatasetError(f"{path}:{line}: need a file and a class in {CLASSES}")
    return {row["file"]: row for row in rows}


def _item(
    root: Path,
    path: Path,
    split: str,
    type_: str,
    labels: dict[str, dict[str, str]],
    masks: _MaskIndex,
) -> Item:
    file = path.relative_to(root).as_posix()
    row = labels.get(file)
    cls = row["class"] if row else ("good" if type_ == "good" else "defect")
    mask = masks.find(type_, path.stem) if type_ != "good" else None
    return Item(
        file=file,
        split=split,
        cls=cls,
        type=type_,
        mask=None if mask is None else mask.relative_to(root).as_posix(),
    )


class _MaskIndex:
    """ground_truth/<type>/<name>_mask.<suffix>, looked up in any letter case (005_mask.PNG,
    Scratch/ for scratch/): each type folder is listed once."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._types: dict[str, dict[str, list[Path]]] | None = None

    def find(self, type_: str, stem: str) -> Path | None:
        if self._types is None:
            self._types = self._index()
        found = self._types.get(type_.lower(), {}).get(f"{stem}{MASK_SUFFIX}".lower(), [])
        if len(found) > 1:
            names = ", ".join(str(p) for p in found)
            raise DatasetError(f"{stem}: more than one ground-truth mask ({names})")
        return found[0] if found else None

    def _index(self) -> dict[str, dict[str, list[Path]]]:
        types: dict[str, dict[str, list[Path]]] = {}
        if not self._folder.is_dir():
            return types
        for folder in sorted(p for p in self._folder.iterdir() if p.is_dir()):
            masks = types.setdefault(folder.name.lower(), {})
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                    masks.setdefault(path.stem.lower(), []).append(path)
        return types
