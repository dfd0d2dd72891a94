"""A labelled folder for the heatmap classifier: the MVTec AD layout (images under train/ and
test/) whose labels.csv gives every image a class.

    DIR/labels.csv   file,class[,type,...]   class = defect | nuisance | good
                     file relative to DIR; type defaults to the image's folder name

Strict, because a technician's few labels are all the classifier learns from: every image
under train/ and test/ must have a row (an unlabelled image is refused, named), and every row
must name an image that is there with a known class (a bad row is refused as
`labels.csv:LINE: FILE: what is wrong`). A part that shows a defect and a nuisance is a
defect. Good images are not classifier examples: they give the good parts' appearance that the
features compare to (edge.heatmap_features.GoodReference).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from edge.images import find_images
from trainer.errors import DatasetError

log = logging.getLogger(__name__)

LABELS = "labels.csv"
CLASSES = ("defect", "nuisance", "good")
IMAGE_FOLDERS = ("train", "test")


@dataclass(frozen=True)
class Labelled:
    file: str  # relative to the folder, POSIX separators
    cls: str  # defect | nuisance | good
    type: str  # the anomaly type (or "good")


@dataclass(frozen=True)
class LabelledSet:
    root: Path
    items: tuple[Labelled, ...]

    @classmethod
    def load(cls, root: Path) -> LabelledSet:
        """Read and check DIR (module docstring); DatasetError, one line, naming the file or
        the labels.csv row that is wrong."""
        if not root.is_dir():
            raise DatasetError(f"{root}: labelled folder not found")
        labels = root / LABELS
        if not labels.is_file():
            raise DatasetError(f"{labels}: missing (every image needs a class: defect, nuisance "
                               "or good)")  # fmt: skip
        rows = _read_rows(labels)
        images = _images(root)
        known = set(images)
        items = []
        seen: dict[str, int] = {}
        for line, row in rows:
            item = _item(labels, line, row, known)
            if item.file in seen:
                raise DatasetError(
                    f"{labels}:{line}: {item.file}: listed twice (first on line {seen[item.file]})"
                )
            seen[item.file] = line
            items.append(item)
        unlabelled = [f for f in images if f not in seen]
        if unlabelled:
            more = f" (and {len(unlabelled) - 1} more)" if len(unlabelled) > 1 else ""
            raise DatasetError(
                f"{root / unlabelled[0]}: no row in {LABELS}{more}: every image needs a class "
                "(defect, nuisance or good)"
            )
        return cls(root, tuple(items))

    def of_class(self, cls: str) -> list[Labelled]:
        return [i for i in self.items if i.cls == cls]

    @property
    def types(self) -> dict[str, str]:
        """Each anomaly type (defects and nuisances) and its class, sorted by name."""
        return dict(sorted({i.type: i.cls for i in self.items if i.cls != "good"}.items()))

    def sample(self, per_type: int, seed: int) -> list[Labelled]:
        """Up to `per_type` images of each anomaly type (draw_per_type)."""
        return [self.items[i] for i in draw_per_type(self.items, per_type, seed)]


def draw_per_type(
    items: Sequence[Labelled], per_type: int, seed: int, exclude: Sequence[str] = ()
) -> list[int]:
    """Indices of up to `per_type` items of each anomaly type (good ones and the types in
    `exclude` left out), drawn at random (seeded), types in name order; a type with fewer
    gives all it has."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    types = sorted({i.type for i in items if i.cls != "good"} - set(exclude))
    for name in types:
        of_type = [k for k, i in enumerate(items) if i.type == name]
        order = rng.permutation(len(of_type))[:per_type]
        chosen.extend(of_type[k] for k in sorted(order))
    return chosen


def split_labelled(data: Path, per_type: int, labelled: Path, rest: Path) -> None:
    """An MVTec-layout dataset with a labels.csv (a synthetic one) cut in two: the first
    `per_type` test images of each type (good included) go to `labelled`, for a technician's
    few labels, the others to `rest`, to judge on; both get train/good and their own
    labels.csv, `rest` the ground-truth masks. Files are linked, not copied."""
    with (data / "labels.csv").open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    out: dict[Path, list[dict[str, str]]] = {labelled: [], rest: []}
    seen: dict[str, int] = {}
    for row in rows:
        if row["split"] == "train":
            out[labelled].append(row)
            out[rest].append(row)
            continue
        n = seen.get(row["type"], 0)
        seen[row["type"]] = n + 1
        out[labelled if n < per_type else rest].append(row)
    for target, kept in out.items():
        for row in kept:
            link = target / row["file"]
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((data / row["file"]).resolve())
        with (target / LABELS).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(kept)
    if (data / "ground_truth").is_dir():
        (rest / "ground_truth").symlink_to((data / "ground_truth").resolve())


def per_type_counts(items: Sequence[Labelled]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.type] = counts.get(item.type, 0) + 1
    return dict(sorted(counts.items()))


def _read_rows(path: Path) -> list[tuple[int, dict[str, str | None]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            rows = [(reader.line_num, dict(row)) for row in reader]
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable ({exc})") from exc
    for column in ("file", "class"):
        if column not in fields:
            raise DatasetError(f"{path}:1: no '{column}' column (header: {','.join(fields)})")
    return rows


def _item(labels: Path, line: int, row: dict[str, str | None], known: set[str]) -> Labelled:
    file = (row.get("file") or "").strip()
    where = f"{labels}:{line}"
    if not file:
        raise DatasetError(f"{where}: no file named")
    cls = (row.get("class") or "").strip()
    if not cls:
        raise DatasetError(f"{where}: {file}: no class (defect, nuisance or good)")
    if cls not in CLASSES:
        raise DatasetError(f"{where}: {file}: unknown class {cls!r} (defect, nuisance or good)")
    posix = PurePosixPath(file).as_posix()
    if posix not in known:
        raise DatasetError(f"{where}: {file}: no such image under {labels.parent}")
    type_ = (row.get("type") or "").strip() or PurePosixPath(posix).parent.name
    return Labelled(posix, cls, "good" if cls == "good" else type_)


def _images(root: Path) -> list[str]:
    """Images under train/ and test/, relative POSIX paths, sorted; what is passed over is
    named in a warning."""
    folders = [root / name for name in IMAGE_FOLDERS if (root / name).is_dir()]
    if not folders:
        raise DatasetError(f"{root}: no train/ or test/ folder (MVTec AD layout expected)")
    listing = find_images(folders)
    for path, why in listing.skipped:
        log.warning("%s: skipped: %s", path, why)
    return sorted(p.relative_to(root).as_posix() for p in listing.files)
