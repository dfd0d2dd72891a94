"""Real datasets come in many image sizes (regions of interest cut from a line camera): `fit`
resizes them to one model size and says by how much the aspect ratios change; the engine judges
frames of other sizes within the range it learnt, refuses the rest by name; `benchmark` compares
the engine with the plain baselines on one split."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.cli import main as partsight
from edge.inspector import Inspector
from trainer.cli import main as partsight_train

FAST = ["--epochs", "3", "--depth", "3", "--width", "4", "--bottleneck", "4", "--size", "48"]


def _resized_copy(source: Path, target: Path, rng: np.random.Generator) -> None:
    """The tiny dataset with every image at its own size between 40 and 90 px a side (masks
    resized alike), labels kept."""
    for path in sorted(source.rglob("*.png")):
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if "ground_truth" in path.parts:
            continue
        size = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))  # (W, H)
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert cv2.imwrite(str(out), cv2.resize(image, size, interpolation=cv2.INTER_AREA))
        mask = source / "ground_truth" / path.parent.name / f"{path.stem}_mask.png"
        if mask.is_file():
            (target / "ground_truth" / path.parent.name).mkdir(parents=True, exist_ok=True)
            gt = cv2.resize(cv2.imread(str(mask), 0), size, interpolation=cv2.INTER_NEAREST)
            assert cv2.imwrite(str(target / "ground_truth" / path.parent.name / mask.name), gt)
    shutil.copy(source / "labels.csv", target / "labels.csv")


@pytest.fixture(scope="module")
def mixed(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixed") / "data"
    _resized_copy(tiny_dataset, root, np.random.default_rng(4))
    return root


def test_fit_resizes_images_of_several_sizes_and_says_so(
    mixed: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "engine"
    with caplog.at_level(logging.WARNING, logger="trainer.fit"):
        code = partsight_train(
            ["--no-progress", "fit", "--data", str(mixed), "--out", str(out), *FAST]
        )
    assert code == 0
    [note] = [r.getMessage() for r in caplog.records if "sizes" in r.getMessage()]
    assert "each is resized to 48x48 (HxW)" in note and "aspect ratio by up to" in note
    spec = json.loads((out / "manifest.json").read_text())["input"]
    heights = [cv2.imread(str(p), 0).shape[0] for p in (mixed / "train" / "good").glob("*.png")]
    widths = [cv2.imread(str(p), 0).shape[1] for p in (mixed / "train" / "good").glob("*.png")]
    assert spec["geometry"] == "resized"
    assert (spec["height"], spec["width"]) == (48, 48)
    assert spec["source_height"] == 2 * max(heights) and spec["source_width"] == 2 * max(widths)
    assert spec["min_source_side"] == min(*heights, *widths) // 2


def test_frames_of_other_sizes_are_judged_in_range_and_refused_outside_it(
    mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "engine"
    assert (
        partsight_train(["--no-progress", "fit", "--data", str(mixed), "--out", str(out), *FAST])
        == 0
    )
    spec = Inspector.open(out).bundle.manifest.input
    frame = cv2.imread(str(next((mixed / "test" / "good").glob("*.png"))), 0)
    inside = tmp_path / "inside.png"
    cv2.imwrite(str(inside), cv2.resize(frame, (spec.source_width, spec.min_source_side or 1)))
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(frame, (spec.source_width, (spec.min_source_side or 1) - 1)))
    capsys.readouterr()
    code = partsight(["inspect", "--engine", str(out), str(inside), str(small)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1  # one image could not be judged
    assert [line["verdict"] in ("OK", "NOK") for line in lines] == [True, False]
    assert lines[1]["verdict"] == "ERROR"
    low = spec.min_source_side
    assert lines[1]["error"].endswith(
        f"size {low - 1}x{spec.source_width} (HxW) is outside the sizes this engine judges "
        f"(height {low}..{spec.source_height}, width {low}..{spec.source_width} px)"
    )


def test_the_benchmark_compares_the_engine_with_both_baselines_on_one_split(
    mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    code = partsight_train(
        ["--no-progress", "benchmark", "--data", str(mixed), "--out", str(out), *FAST]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    summary = json.loads((out / "benchmark.json").read_text())
    rows = {row["method"]: row for row in summary["methods"]}
    assert list(rows) == ["partsight", "per-pixel Gaussian", "PCA"]
    engine_metrics = json.loads((out / "partsight" / "metrics.json").read_text())
    assert rows["partsight"]["image_auroc"] == engine_metrics["image_auroc"]
    for row in rows.values():
        assert 0.0 <= row["image_auroc"] <= 1.0 and 0.0 <= row["pixel_auroc"] <= 1.0
        assert 0.0 <= row["false_reject_rate"] <= 1.0 and 0.0 <= row["escape_rate"] <= 1.0
        assert set(row["escape_rate_per_type"]) == set(engine_metrics["per_type"])
        assert row["fit_s"] > 0 and row["inference_ms"] > 0
    # The synthetic defects are plain to see: even the baselines beat chance here.
    assert rows["PCA"]["image_auroc"] > 0.6
    assert (out / "report.html").is_file() and (out / "figures" / "roc_methods.png").is_file()
    assert (out / "pca" / "report.html").is_file()
    assert "| partsight |" in stdout and "| PCA |" in stdout and "report.html" in stdout
