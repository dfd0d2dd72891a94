"""`partsight-train evaluate`: score a dataset's test split with an engine, exactly as the line
would (the edge runtime's Inspector over ONNX Runtime), then write metrics.json and a report.

metrics.json's `masks` says which ground truth the pixel metrics rest on: how many defect images
had a mask, which had none (named), and each mask that looks wrong (almost empty, almost
everything: inverted?, another size than its image), named with what is wrong."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import ImageError
from edge.inspector import Inspection, Inspector, inspect_files
from hw.camera.image_file import read_image_size
from trainer.dataset import Dataset, Item, mask_problem
from trainer.errors import DatasetError
from trainer.metrics import ImageRecord, evaluate_records
from trainer.progress import progress_bar
from trainer.report import write_report

log = logging.getLogger(__name__)

BATCH = 16
UNREGISTERED_SCORE = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    report: Path
    records: list[ImageRecord]


@dataclass
class _MaskTally:
    """The ground truth behind the pixel metrics: counts, and the files worth a look."""

    defects: int = 0
    used: int = 0
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "defect_images": self.defects,
            "with_mask": self.used,
            "missing": self.missing,
            "warnings": self.warnings,
        }


def evaluate(
    engine: Path,
    data: Path,
    out: Path,
    show_progress: bool = True,
    learning_curve: Path | None = None,
) -> Evaluation:
    """Judge `data`/test with the engine as the line would and write metrics.json, scores.csv
    and report.html to `out`. With a heatmap classifier, the verdicts include its decisions
    (metrics.json `verdicts`, `classifier`); `learning_curve` (a labelled folder, see
    trainer.labelled) adds how the classifier's rates follow the number of labelled images
    (trainer.learning_curve)."""
    inspector = Inspector.open(engine)
    inspector.check_golden()
    manifest = inspector.bundle.manifest
    dataset = Dataset.load(data, need_test=True, need_train=False)  # scores test/ only
    size = (manifest.input.width, manifest.input.height)
    records: list[ImageRecord] = []
    tally = _MaskTally()
    bar = progress_bar(len(dataset.test), "evaluating", "image", enabled=show_progress)
    for start in range(0, len(dataset.test), BATCH):
        items = dataset.test[start : start + BATCH]
        outcomes = inspect_files(inspector, [dataset.root / i.file for i in items], BATCH)
        for item, (_, outcome) in zip(items, outcomes, strict=True):
            if isinstance(outcome, ImageError):
                raise DatasetError(str(outcome))
            # Every image's own (H, W): a "resized" engine judges frames of several sizes.
            width, height = read_image_size(dataset.root / item.file)
            mask = _ground_truth(dataset, item, (height, width), tally)
            records.append(_record(item, outcome, size, mask))
        bar.update(len(items))
    bar.close()
    metrics = evaluate_records(records, inspector.threshold)
    metrics["masks"] = tally.as_dict()
    metrics["engine"] = {
        "name": manifest.name,
        "version": manifest.version,
        "scoring": manifest.scoring.model_dump(mode="json"),
    }
    metrics["dataset"] = str(data)
    metrics["unregistered"] = sum(r.score == UNREGISTERED_SCORE for r in records)
    if manifest.classifier is not None:
        metrics["classifier"] = manifest.classifier.model_dump(mode="json")
    if learning_curve is not None:
        metrics["learning_curve"] = _learning_curve(
            inspector, dataset, learning_curve, show_progress
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_scores(out / "scores.csv", records)
    report = write_report(out, metrics, records, title=f"PartSight evaluation — {manifest.name}")
    return Evaluation(metrics=metrics, report=report, records=records)


def _learning_curve(
    inspector: Inspector, dataset: Dataset, labelled: Path, show_progress: bool
) -> dict[str, Any]:
    """The classifier retrained on subsets of `labelled`, judged on the dataset's test split."""
    from trainer.classify_defaults import DEFAULT_OOD_MARGIN, DEFAULT_PASS_PROBABILITY
    from trainer.feature_table import FeatureExtractor
    from trainer.labelled import Labelled, LabelledSet
    from trainer.learning_curve import learning_curve

    pool_set = LabelledSet.load(labelled)
    extractor = FeatureExtractor(inspector.bundle, show_progress)
    extractor.learn_good(pool_set.root, pool_set.of_class("good"))
    anomalous = [i for i in pool_set.items if i.cls != "good"]
    pool = extractor.table(pool_set.root, anomalous, "labelled pool")
    test_items = [Labelled(i.file, i.cls, i.type) for i in dataset.test]
    test = extractor.table(dataset.root, test_items, "test features", skip_unregistered=True)
    spec = inspector.bundle.manifest.classifier
    return learning_curve(
        pool, test, inspector.bundle.manifest.scoring.threshold,
        spec.pass_probability if spec else DEFAULT_PASS_PROBABILITY,
        spec.ood.margin if spec else DEFAULT_OOD_MARGIN,
    )  # fmt: skip


def _ground_truth(
    dataset: Dataset, item: Item, frame: tuple[int, int], tally: _MaskTally
) -> np.ndarray | None:
    """The item's defect mask at frame size (H, W), bool; None for a defect without a mask.
    Counted, and named in the tally (and the log) when missing or when it looks wrong."""
    if item.cls == "good":
        return np.zeros(frame, bool)
    mask = dataset.read_mask(item)
    if item.cls == "defect":
        tally.defects += 1
        if mask is None:
            tally.missing.append(item.file)
            log.warning("%s: defect image without a ground-truth mask", item.file)
        else:
            tally.used += 1
            problem = mask_problem(mask, frame)
            if problem:
                tally.warnings.append(f"{item.mask}: {problem}")
                log.warning("%s: the mask %s", item.mask, problem)
    return None if mask is None else _resized(mask, (frame[1], frame[0]))


def _record(
    item: Item, outcome: Inspection, size: tuple[int, int], mask: np.ndarray | None
) -> ImageRecord:
    """The evaluation record of one judged image, everything in the model's frame; `mask` is
    the ground truth at frame size."""
    if mask is not None:
        if outcome.to_frame is None:
            mask = _resized(mask, size)
        else:  # ground truth is drawn on the frame: bring it into the registered crop
            mask = cv2.warpAffine(
                mask.astype(np.uint8), outcome.to_frame, size,
                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            ).astype(bool)  # fmt: skip
    if outcome.score is None or outcome.anomaly_map is None or outcome.model_input is None:
        # Not registered: the line rejects it, so it ranks as the most anomalous part there is.
        blank = np.zeros((size[1], size[0]), np.float32)
        return ImageRecord(
            file=item.file, cls=item.cls, type=item.type, score=UNREGISTERED_SCORE,
            anomaly_map=blank + UNREGISTERED_SCORE,
            gt_mask=mask, image=blank, verdict=outcome.verdict, reason=outcome.reason,
        )  # fmt: skip
    image = outcome.model_input
    return ImageRecord(
        file=item.file,
        cls=item.cls,
        type=item.type,
        score=outcome.score,
        anomaly_map=outcome.anomaly_map,
        gt_mask=mask,
        image=image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
        verdict=outcome.verdict,
        reason=outcome.reason,
        defect_class=outcome.defect_class,
        class_probability=outcome.class_probability,
    )


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """bool mask resized to size=(W, H), nearest neighbour."""
    if mask.shape == (size[1], size[0]):
        return mask
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


def _write_scores(path: Path, records: list[ImageRecord]) -> None:
    """One row per image: its truth, and the engine's verdict, reason, and (with a heatmap
    classifier) the class and its probability, exactly as the line would publish them."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["file", "class", "type", "score", "verdict", "reason", "predicted_class",
             "class_probability"]
        )  # fmt: skip
        for r in records:
            probability = "" if r.class_probability is None else repr(r.class_probability)
            writer.writerow(
                [r.file, r.cls, r.type, repr(r.score), r.verdict, r.reason,
                 r.defect_class or "", probability]
            )  # fmt: skip
