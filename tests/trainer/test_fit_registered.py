"""Registration in the core loop: train on randomly posed frames, judge frames the same way."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.images import read_image
from edge.inspector import Inspector
from trainer.evaluate import evaluate
from trainer.fit import FitResult


@pytest.fixture(scope="module")
def posed(posed_engine: tuple[Path, FitResult]) -> tuple[Path, FitResult]:
    return posed_engine


def test_posed_data_is_registered_by_default(posed: tuple[Path, FitResult]) -> None:
    _, result = posed
    manifest = json.loads((result.engine / "manifest.json").read_text())
    assert manifest["registration"]["min_confidence"] == 0.5
    listed = {f["path"] for f in manifest["files"]}
    assert set(manifest["registration"]["files"]) <= listed
    assert manifest["input"]["source_width"] == 160  # takes whole frames
    assert manifest["input"]["width"] < 160  # scores the registered crop


def test_inspect_finds_the_true_pose(posed: tuple[Path, FitResult]) -> None:
    root, result = posed
    inspector = Inspector.open(result.engine, registration_device="cpu")
    rows = [r for r in csv.DictReader((root / "labels.csv").open()) if r["split"] == "test"]
    first = next(r for r in rows if r["type"] == "good")
    got = inspector.inspect(read_image(root / first["file"]))
    assert got.confidence is not None and got.confidence > 0.8
    truth = next(r for r in csv.DictReader((root / "labels.csv").open()) if r["split"] == "train")
    # Poses are relative to the template (cut from the first training frame): compare the
    # rotation between two frames with the generator's rotation between them.
    train0 = inspector.inspect(read_image(root / truth["file"]))
    relative = (got.pose.angle_deg - train0.pose.angle_deg) % 360  # type: ignore[union-attr]
    want = (float(first["angle_deg"]) - float(truth["angle_deg"])) % 360
    assert min(abs(relative - want), 360 - abs(relative - want)) < 0.5


def test_a_frame_without_the_part_is_nok_registration(posed: tuple[Path, FitResult]) -> None:
    _, result = posed
    empty = np.full((160, 160), 40, np.uint8)
    got = Inspector.open(result.engine, registration_device="cpu").inspect(empty)
    assert (got.verdict, got.reason, got.score) == ("NOK", "registration", None)
    assert got.confidence is not None and got.confidence < 0.5


def test_cli_and_evaluate_agree_on_posed_frames(
    posed: tuple[Path, FitResult], tmp_path: Path
) -> None:
    root, result = posed
    evaluation = evaluate(result.engine, root, tmp_path / "report", show_progress=False)
    assert evaluation.metrics["unregistered"] == 0
    assert evaluation.metrics["pixel_auroc"] is not None  # masks brought into the crop
    out = subprocess.run(
        [str(Path(sys.executable).parent / "partsight"), "inspect", "--engine",
         str(result.engine), str(root / "test" / "good")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    cli = {Path(j["file"]).name: j for j in map(json.loads, out.stdout.splitlines())}
    for record in evaluation.records:
        if record.type == "good":
            got = cli[Path(record.file).name]
            assert abs(got["score"] - record.score) <= 1e-4 * abs(record.score)
            assert got["pose"] is not None and got["confidence"] > 0.5
