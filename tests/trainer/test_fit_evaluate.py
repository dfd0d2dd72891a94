"""The core loop on tiny data: fit → bundle → evaluate → `partsight inspect`, on ONNX Runtime."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.errors import BundleError
from edge.inspector import Inspector
from trainer.evaluate import evaluate
from trainer.fit import FitResult

BIN = Path(sys.executable).parent


def run_cli(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def evaluation(
    tiny_engine: FitResult, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory
):
    return evaluate(tiny_engine.engine, tiny_dataset, tmp_path_factory.mktemp("report"), False)


def test_bundle_is_complete_and_verified(tiny_engine: FitResult) -> None:
    bundle = load_bundle(tiny_engine.engine)
    manifest = bundle.manifest
    listed = {f.path for f in manifest.files}
    assert manifest.model.file in listed and len(manifest.golden) == 3
    assert {g.file for g in manifest.golden} <= listed
    assert manifest.scoring.threshold == pytest.approx(tiny_engine.threshold)
    assert "std" in manifest.scoring.threshold_rule  # the good-only rule, not the minimum
    assert manifest.validation["good_score_mean"] < manifest.scoring.threshold
    assert manifest.input.source_width == 64 and manifest.input.channels == 1


def test_defects_score_higher_than_good_parts(evaluation) -> None:
    scores = {
        cls: [r.score for r in evaluation.records if r.cls == cls] for cls in ("good", "defect")
    }
    assert np.median(scores["defect"]) > np.median(scores["good"])
    assert evaluation.metrics["image_auroc"] > 0.9
    assert evaluation.metrics["pixel_auroc"] > 0.85


def test_evaluate_writes_metrics_and_a_report(evaluation) -> None:
    folder = evaluation.report.parent
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["engine"]["name"] == "tiny"
    assert metrics["counts"]["by_class"]["nuisance"] > 0
    assert evaluation.report.name == "report.html" and (folder / "figures" / "roc.png").is_file()


def test_evaluate_needs_only_the_test_split(
    evaluation, tiny_engine: FitResult, tiny_dataset: Path, tmp_path: Path
) -> None:
    """A folder with test/ (and its labels and masks) but no train/good is enough to evaluate:
    the same figures as on the whole dataset."""
    shutil.copytree(tiny_dataset, tmp_path / "data", ignore=shutil.ignore_patterns("train"))
    assert not (tmp_path / "data" / "train").exists()
    alone = evaluate(tiny_engine.engine, tmp_path / "data", tmp_path / "report", False)
    assert alone.metrics["image_auroc"] == evaluation.metrics["image_auroc"]
    assert alone.metrics["counts"] == evaluation.metrics["counts"]


def test_inspect_cli_gives_the_scores_evaluate_gave(
    tiny_engine: FitResult, tiny_dataset: Path, evaluation, tmp_path: Path
) -> None:
    out = run_cli(
        "partsight",
        "inspect",
        "--engine",
        str(tiny_engine.engine),
        str(tiny_dataset / "test"),
        "--heatmaps",
        str(tmp_path / "heat"),
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    by_file = {Path(r["file"]).relative_to(tiny_dataset).as_posix(): r for r in lines}
    rows = list(csv.DictReader((evaluation.report.parent / "scores.csv").open()))
    assert len(rows) == len(by_file) == len(evaluation.records)
    for row in rows:
        got = by_file[row["file"]]
        want = float(row["score"])
        assert abs(got["score"] - want) <= 1e-4 * abs(want), row["file"]
        assert got["verdict"] == row["verdict"]
        assert got["threshold"] == pytest.approx(tiny_engine.threshold)
    nok = [r for r in lines if r["verdict"] == "NOK"]
    assert nok and all(r["regions"] for r in nok)  # every rejected part says where
    assert len(list((tmp_path / "heat").glob("*.png"))) == len(lines)


def test_inspect_names_a_corrupt_image_and_judges_the_rest(
    tiny_engine: FitResult, tiny_dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "frames"
    shutil.copytree(tiny_dataset / "test" / "good", folder)
    (folder / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = run_cli("partsight", "inspect", "--engine", str(tiny_engine.engine), str(folder))
    assert out.returncode == 1
    errors = out.stderr.strip().splitlines()
    assert len(errors) == 1 and "zz_corrupt.png" in errors[0]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == len(list(folder.iterdir()))
    bad = [r for r in lines if r["file"].endswith("zz_corrupt.png")]
    assert bad[0]["verdict"] == "ERROR" and bad[0]["reason"] == "image"
    assert all(r["verdict"] in ("OK", "NOK") for r in lines if r is not bad[0])


def test_inspect_refuses_a_wrong_size_frame(tiny_engine: FitResult, tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((80, 64), np.uint8))
    out = run_cli("partsight", "inspect", "--engine", str(tiny_engine.engine), str(tmp_path))
    assert (
        out.returncode == 1 and "big.png" in out.stderr and "wrong size 80x64 (HxW)" in out.stderr
    )


def test_threshold_override(tiny_engine: FitResult, tiny_dataset: Path) -> None:
    image = str(next((tiny_dataset / "test" / "good").iterdir()))
    out = run_cli(
        "partsight", "inspect", "--engine", str(tiny_engine.engine), image, "--threshold", "1e-9"
    )
    line = json.loads(out.stdout)
    assert line["verdict"] == "NOK" and line["threshold"] == 1e-9


@pytest.mark.parametrize("damage", ["model", "extra_file", "manifest"])
def test_a_tampered_engine_is_refused(tiny_engine: FitResult, tmp_path: Path, damage: str) -> None:
    engine = tmp_path / "engine"
    shutil.copytree(tiny_engine.engine, engine)
    if damage == "model":
        data = bytearray((engine / "model.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (engine / "model.onnx").write_bytes(bytes(data))
    elif damage == "extra_file":
        (engine / "payload.py").write_text("print('hi')")
    else:
        manifest = json.loads((engine / "manifest.json").read_text())
        manifest["scoring"]["surprise"] = 1
        (engine / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError):
        load_bundle(engine)
    out = run_cli("partsight", "inspect", "--engine", str(engine), str(engine))
    assert out.returncode == 2 and out.stderr.startswith("partsight: error:")


def test_golden_samples_catch_a_backend_that_disagrees(tiny_engine: FitResult) -> None:
    inspector = Inspector.open(tiny_engine.engine)
    inspector.check_golden()
    golden = inspector.bundle.manifest.golden[0]
    shifted = golden.model_copy(update={"expected_score": golden.expected_score * 1.01})
    manifest = inspector.bundle.manifest.model_copy(update={"golden": (shifted,)})
    inspector.bundle = inspector.bundle.__class__(inspector.bundle.root, manifest)
    with pytest.raises(BundleError, match="golden"):
        inspector.check_golden()


def test_fit_names_a_corrupt_training_image(tiny_dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset / "train", data / "train")
    (data / "train" / "good" / "007.png").write_bytes(b"broken")
    out = run_cli(
        "partsight-train", "fit", "--data", str(data), "--out", str(tmp_path / "e"), "--epochs", "1"
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "007.png" in out.stderr
    assert not (tmp_path / "e").exists()
