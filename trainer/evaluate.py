"""`partsight-train evaluate`: score a dataset's test split with an engine, exactly as the line
would (the edge runtime's Inspector over ONNX Runtime), then write metrics.json and a report."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.errors import ImageError
from edge.inspector import Inspection, Inspector, inspect_files
from trainer.dataset import Dataset, Item
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


def evaluate(engine: Path, data: Path, out: Path, show_progress: bool = True) -> Evaluation:
    inspector = Inspector.open(engine)
    inspector.check_golden()
    manifest = inspector.bundle.manifest
    dataset = Dataset.load(data, need_test=True)
    size = (manifest.input.width, manifest.input.height)
    records: list[ImageRecord] = []
    bar = progress_bar(len(dataset.test), "evaluating", "image", enabled=show_progress)
    for start in range(0, len(dataset.test), BATCH):
        items = dataset.test[start : start + BATCH]
        outcomes = inspect_files(inspector, [dataset.root / i.file for i in items], BATCH)
        for item, (_, outcome) in zip(items, outcomes, strict=True):
            if isinstance(outcome, ImageError):
                raise DatasetError(str(outcome))
            records.append(_record(dataset, item, outcome, size))
        bar.update(len(items))
    bar.close()
    metrics = evaluate_records(records, inspector.threshold)
    metrics["engine"] = {
        "name": manifest.name,
        "version": manifest.version,
        "scoring": manifest.scoring.model_dump(mode="json"),
    }
    metrics["dataset"] = str(data)
    metrics["unregistered"] = sum(r.score == UNREGISTERED_SCORE for r in records)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_scores(out / "scores.csv", records, inspector.threshold)
    report = write_report(out, metrics, records, title=f"PartSight evaluation — {manifest.name}")
    return Evaluation(metrics=metrics, report=report, records=records)


def _record(
    dataset: Dataset, item: Item, outcome: Inspection, size: tuple[int, int]
) -> ImageRecord:
    """The evaluation record of one judged image, everything in the model's frame."""
    if outcome.score is None or outcome.anomaly_map is None or outcome.model_input is None:
        # Not registered: the line rejects it, so it ranks as the most anomalous part there is.
        blank = np.zeros((size[1], size[0]), np.float32)
        return ImageRecord(
            file=item.file, cls=item.cls, type=item.type, score=UNREGISTERED_SCORE,
            anomaly_map=blank + UNREGISTERED_SCORE, gt_mask=dataset.read_mask(item, size),
            image=blank,
        )  # fmt: skip
    if outcome.to_frame is None:
        mask = dataset.read_mask(item, size)
    else:  # ground truth is drawn on the frame: bring it into the registered crop
        mask = dataset.read_mask(item)
        if mask is not None:
            mask = cv2.warpAffine(
                mask.astype(np.uint8), outcome.to_frame, size,
                flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            ).astype(bool)  # fmt: skip
    image = outcome.model_input
    return ImageRecord(
        file=item.file,
        cls=item.cls,
        type=item.type,
        score=outcome.score,
        anomaly_map=outcome.anomaly_map,
        gt_mask=mask,
        image=image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
    )


def _write_scores(path: Path, records: list[ImageRecord], threshold: float) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class", "type", "score", "verdict"])
        for r in records:
            writer.writerow(
                [r.file, r.cls, r.type, repr(r.score), "NOK" if r.score >= threshold else "OK"]
            )
