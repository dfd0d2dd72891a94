"""`partsight-train evaluate`: score a dataset's test split with an engine, exactly as the line
would (the edge runtime's Inspector over ONNX Runtime), then write metrics.json and a report."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import ImageError
from edge.inspector import Inspector, inspect_files
from trainer.dataset import Dataset
from trainer.errors import DatasetError
from trainer.metrics import ImageRecord, evaluate_records
from trainer.progress import progress_bar
from trainer.report import write_report

log = logging.getLogger(__name__)

BATCH = 16


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
            image = outcome.model_input
            records.append(
                ImageRecord(
                    file=item.file,
                    cls=item.cls,
                    type=item.type,
                    score=outcome.score,
                    anomaly_map=outcome.anomaly_map,
                    gt_mask=dataset.read_mask(item, size),
                    image=image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0),
                )
            )
        bar.update(len(items))
    bar.close()
    metrics = evaluate_records(records, inspector.threshold)
    metrics["engine"] = {
        "name": manifest.name,
        "version": manifest.version,
        "scoring": manifest.scoring.model_dump(mode="json"),
    }
    metrics["dataset"] = str(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_scores(out / "scores.csv", records, inspector.threshold)
    report = write_report(out, metrics, records, title=f"PartSight evaluation — {manifest.name}")
    return Evaluation(metrics=metrics, report=report, records=records)


def _write_scores(path: Path, records: list[ImageRecord], threshold: float) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class", "type", "score", "verdict"])
        for r in records:
            writer.writerow(
                [r.file, r.cls, r.type, repr(r.score), "NOK" if r.score >= threshold else "OK"]
            )
