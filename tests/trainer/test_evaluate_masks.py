"""`evaluate` on ground truth from real pipelines (issue 9's field input 3): masks re-saved through
JPEG and named in another letter case give the clean masks' pixel metrics; a missing, empty or
inverted mask is named; `evaluate` says how many masks it used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from trainer.cli import main
from trainer.dataset import Dataset
from trainer.evaluate import Evaluation, evaluate
from trainer.fit import FitResult


@pytest.fixture(scope="module")
def clean(
    tiny_engine: FitResult, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> Evaluation:
    return evaluate(tiny_engine.engine, tiny_dataset, tmp_path_factory.mktemp("clean"), False)


def _jpeg(mask: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", mask, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def test_jpeg_resaved_masks_in_any_letter_case_give_the_clean_pixel_metrics(
    clean: Evaluation, tiny_engine: FitResult, tiny_dataset: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    halo = 0
    masks = sorted((data / "ground_truth").rglob("*_mask.png"))
    for path in masks:
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        resaved = _jpeg(mask)
        halo += np.count_nonzero(resaved) - np.count_nonzero(mask)
        assert cv2.imwrite(str(path), resaved)  # a PNG now, with JPEG's halo in it
    assert halo > 100  # read as `> 0`, the halo would be counted as defect
    for path in masks[::2]:  # and half of them named 000_mask.PNG
        path.rename(path.with_suffix(".PNG"))
    result = evaluate(tiny_engine.engine, data, tmp_path / "report", False)
    want = clean.metrics
    assert result.metrics["pixel_auroc"] == pytest.approx(want["pixel_auroc"], abs=1e-3)
    assert result.metrics["aupro"] == pytest.approx(want["aupro"], abs=5e-3)
    defects = want["masks"]["defect_images"]
    assert defects > 10
    complete = {"defect_images": defects, "with_mask": defects, "missing": [], "warnings": []}
    assert want["masks"] == complete
    assert result.metrics["masks"] == want["masks"]


def test_missing_empty_and_inverted_masks_are_named_and_counted(
    tiny_engine: FitResult,
    tiny_dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    defects = [i for i in Dataset.load(data).test if i.cls == "defect" and i.mask]
    missing, inverted, empty = defects[:3]
    assert missing.mask and inverted.mask and empty.mask
    (data / missing.mask).unlink()
    mask = cv2.imread(str(data / inverted.mask), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(data / inverted.mask), 255 - mask)
    cover = np.count_nonzero(255 - mask) / mask.size
    cv2.imwrite(str(data / empty.mask), np.zeros_like(mask))
    code = main(["--no-progress", "evaluate", "--engine", str(tiny_engine.engine), "--data",
                 str(data), "--report", str(tmp_path / "report")])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0
    lines = out.out.splitlines()
    count = len(defects)
    assert lines[2:5] == [
        f"masks: {count - 1} of {count} defect images have one; without a mask: {missing.file}",
        f"mask warning: {inverted.mask}: covers {cover:.0%} of the image: inverted (defect drawn "
        "black on white)?",
        f"mask warning: {empty.mask}: is empty: it marks no defect pixel",
    ]
    metrics: dict[str, Any] = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["pixel_auroc"] is None
    assert (
        f"overall pixel metrics: not computed (1 defect image(s) without a mask: {missing.file})"
        in metrics["notes"]
    )
    assert metrics["masks"]["missing"] == [missing.file] and len(metrics["masks"]["warnings"]) == 2
    assert f"{missing.file}: defect image without a ground-truth mask" in caplog.messages
