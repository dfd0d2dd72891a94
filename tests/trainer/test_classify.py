"""`partsight-train classify` on the tiny engine: a classifier trained in seconds from 5
labelled images per type that passes a nuisance type (a light change) and rejects a defect type
(foreign material), written as a new verified bundle; `partsight inspect` and `evaluate` give
the same class and probability; a classifier that fails rejects the part (ERROR)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

import edge.heatmap_features
from edge.backends import Graph
from edge.backends.onnxruntime import OnnxRuntimeBackend
from edge.backends.tensorrt import TensorRtBackend
from edge.bundle import load_bundle
from edge.cli import main as edge_main
from edge.config.engine import TensorRtBackendConfig
from edge.errors import BundleError
from edge.gpu.device import CudaDevice
from edge.images import read_image
from edge.inspector import Inspector, model_graph
from edge.manifest import CLASSIFIER_OUTPUTS, FEATURE_VERSION
from edge.stages.classify import CLASSIFIER_GRAPH
from tests.conftest import TINY_DEFECT, TINY_NUISANCE
from trainer.cli import main as train_main
from trainer.evaluate import evaluate
from trainer.fit import FitResult

NUISANCE, DEFECT = TINY_NUISANCE, TINY_DEFECT


def test_the_new_engine_is_a_verified_bundle_with_a_new_version(
    tiny_classified: tuple[Path, str], tiny_engine: FitResult
) -> None:
    engine, printed = tiny_classified
    assert f"labelled: 10 images ({NUISANCE} 5, {DEFECT} 5): 5 defects, 5 nuisances" in printed
    bundle = load_bundle(engine)
    manifest, before = bundle.manifest, load_bundle(tiny_engine.engine).manifest
    assert (before.version, manifest.version) == ("0.1.0", "0.2.0")
    spec = manifest.classifier
    assert spec is not None and spec.features == "residual"
    assert spec.training.images == {DEFECT: 5, NUISANCE: 5}
    hashed = {f.path for f in manifest.files}
    assert {spec.file, spec.reference_file} <= hashed
    expecting = [g for g in manifest.golden if g.expected_nuisance_probability is not None]
    assert len(expecting) == 2 and {g.file for g in expecting} <= hashed
    assert not (engine.parent / f"{engine.name}.partial").exists()


def test_it_passes_the_nuisance_and_rejects_the_defect(
    tiny_classified: tuple[Path, str], tiny_test_set: Path
) -> None:
    inspector = Inspector.open(tiny_classified[0])
    inspector.check_golden()
    judged = {}
    for kind in (NUISANCE, DEFECT):
        files = sorted((tiny_test_set / "test" / kind).glob("*.png"))
        judged[kind] = inspector.inspect_batch(
            [read_image(f) for f in files], [str(f) for f in files]
        )
    nuisances, defects = judged[NUISANCE], judged[DEFECT]
    assert all(r.score is not None and r.score >= inspector.threshold for r in nuisances)
    passed = [
        r
        for r in nuisances
        if (r.verdict, r.reason, r.defect_class) == ("OK", "nuisance", "nuisance")
    ]
    assert all(r.class_probability is not None and r.class_probability >= 0.9 for r in passed)
    # Five labelled light changes do not span every light change: a part outside what they
    # showed is refused by the out-of-distribution guard, never by the MLP's own judgement.
    assert len(passed) >= len(nuisances) - 1
    assert all((r.verdict, r.reason) == ("NOK", "ood") for r in nuisances if r not in passed)
    assert all(r.verdict == "NOK" and r.defect_class == "defect" for r in defects)


def test_inspect_and_evaluate_give_the_same_class_and_probability(
    tiny_classified: tuple[Path, str], tiny_test_set: Path, tmp_path: Path
) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        args = ["inspect", "--engine", str(tiny_classified[0]), str(tiny_test_set / "test")]
        assert edge_main(args) == 0
    lines = {
        Path(line["file"]).relative_to(tiny_test_set).as_posix(): line
        for line in map(json.loads, printed.getvalue().splitlines())
    }
    evaluate(tiny_classified[0], tiny_test_set, tmp_path / "report", show_progress=False)
    rows = list(csv.DictReader((tmp_path / "report" / "scores.csv").open()))
    assert len(rows) == len(lines) == 16
    classified_rows = 0
    for row in rows:
        line = lines[row["file"]]
        assert (line["verdict"], line["reason"]) == (row["verdict"], row["reason"])
        assert (line["class"] or "") == row["predicted_class"]
        if line["class_probability"] is None:
            assert row["class_probability"] == ""
            continue
        classified_rows += 1
        assert abs(line["class_probability"] - float(row["class_probability"])) <= 1e-4
    assert classified_rows >= 12  # every anomalous part was classified
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["verdicts"]["defect_escape_rate"] == 0.0
    assert metrics["verdicts"]["nuisance_pass_rate"] >= 5 / 6  # as above: one may be "ood"
    assert metrics["classifier"]["features"] == "residual"
    assert "Defects passed (escaped)" in (tmp_path / "report" / "report.html").read_text()


def test_a_classifier_that_fails_rejects_the_part_as_an_error(
    tiny_classified: tuple[Path, str], tiny_test_set: Path
) -> None:
    bundle = load_bundle(tiny_classified[0])
    manifest = bundle.manifest
    assert manifest.classifier is not None
    dae = OnnxRuntimeBackend(
        bundle.path(manifest.model.file), graph=model_graph(manifest, activations=True)
    )
    # A real ONNX Runtime session asked for only one of the classifier's three outputs: the
    # stage gets no out-of-distribution distance, so it cannot judge the part.
    short = Graph(CLASSIFIER_OUTPUTS, fetch=("nuisance_probability",))
    broken = OnnxRuntimeBackend(bundle.path(manifest.classifier.file), graph=short)
    inspector = Inspector(bundle, dae, classifier_backend=broken)
    result = inspector.inspect(read_image(tiny_test_set / "test" / NUISANCE / "000.png"))
    assert (result.verdict, result.reason, result.defect_class) == ("ERROR", "classifier", None)
    assert "no output 'ood_distance'" in result.detail


def test_a_part_with_more_regions_than_the_classifier_judges_is_rejected_as_an_error(
    tiny_classified: tuple[Path, str], tiny_test_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inspector = Inspector.open(tiny_classified[0])
    image = read_image(tiny_test_set / "test" / NUISANCE / "000.png")
    assert inspector.inspect(image).verdict == "OK"  # the nuisance passes...
    monkeypatch.setattr(edge.heatmap_features, "MAX_REGIONS", 0)
    result = inspector.inspect(image)  # ...until the line may judge no region of it
    assert (result.verdict, result.reason, result.defect_class) == ("ERROR", "classifier", None)
    assert "more than the 0 the classifier judges" in result.detail


def test_a_tampered_classifier_is_refused(
    tiny_classified: tuple[Path, str], tmp_path: Path
) -> None:
    copy = tmp_path / "engine"
    shutil.copytree(tiny_classified[0], copy)
    with (copy / "classifier" / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="classifier/model.onnx does not match its sha256"):
        load_bundle(copy)


def test_overrides_need_a_classifier(tiny_engine: FitResult) -> None:
    with pytest.raises(BundleError, match="the engine has no heatmap classifier"):
        Inspector.open(tiny_engine.engine, pass_probability=0.95)


def test_tensorrt_runs_the_dae_and_the_classifier(
    fake_tensorrt: ModuleType,
    tiny_classified: tuple[Path, str],
    tiny_test_set: Path,
    tmp_path: Path,
) -> None:
    bundle = load_bundle(tiny_classified[0])
    manifest = bundle.manifest
    assert manifest.classifier is not None
    settings = TensorRtBackendConfig.model_validate({"cache_dir": str(tmp_path), "fp16": False})
    device = CudaDevice.simulator()
    dae = TensorRtBackend(bundle.path(manifest.model.file), settings, device=device,
                          graph=model_graph(manifest))  # fmt: skip
    classifier = TensorRtBackend(bundle.path(manifest.classifier.file), settings, device=device,
                                 graph=CLASSIFIER_GRAPH)  # fmt: skip
    trt = Inspector(bundle, dae, classifier_backend=classifier)
    trt.check_golden()
    ort = Inspector.open(tiny_classified[0])
    files = sorted((tiny_test_set / "test").glob("*/*.png"))
    images = [read_image(f) for f in files]
    got = trt.inspect_batch(images, [str(f) for f in files])
    want = ort.inspect_batch(images, [str(f) for f in files])
    assert [(g.verdict, g.reason, g.defect_class) for g in got] == [
        (w.verdict, w.reason, w.defect_class) for w in want
    ]
    pairs = [(g.class_probability, w.class_probability) for g, w in zip(got, want, strict=True)]
    classified_parts = [(g, w) for g, w in pairs if w is not None and g is not None]
    assert len(classified_parts) >= 12
    assert all(abs(g - w) <= 1e-5 for g, w in classified_parts)
    assert fake_tensorrt.BUILDS == 2  # one plan each


def test_an_engine_classified_by_an_older_feature_layout_is_refused_and_can_be_reclassified(
    tiny_classified: tuple[Path, str], tiny_labelled: Path, tmp_path: Path
) -> None:
    """A bundle as the previous trainer wrote it (feature layout 1, a graph of two outputs, no
    envelope in its guard): the runtime refuses it in one line that names the remedy, and the
    remedy works: `classify` replaces that classifier."""
    old = tmp_path / "old"
    shutil.copytree(tiny_classified[0], old)
    raw = json.loads((old / "manifest.json").read_text())
    raw["classifier"]["feature_version"] = 1
    raw["classifier"]["outputs"] = ["nuisance_probability", "ood_distance"]
    del raw["classifier"]["ood"]["excess_max"]
    (old / "manifest.json").write_text(json.dumps(raw))
    refused = (
        rf"feature layout 1, this runtime computes layout {FEATURE_VERSION}: "
        r"re-run `partsight-train classify --engine` on it"
    )
    with pytest.raises(BundleError, match=refused):
        load_bundle(old)
    out = tmp_path / "new"
    with contextlib.redirect_stdout(io.StringIO()):
        code = train_main([
            "--no-progress", "classify", "--engine", str(old), "--labelled", str(tiny_labelled),
            "--out", str(out), "--per-type", "5",
        ])  # fmt: skip
    assert code == 0
    spec = load_bundle(out).manifest.classifier
    assert spec is not None and spec.ood.excess_max > 0
    Inspector.open(out).check_golden()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--pass-probability", "0.4"], "--pass-probability 0.4: must be above 0.5 and at most 1"),
        (["--ood-margin", "0.5"], "--ood-margin 0.5: must be a finite number >= 1"),
    ],
)
def test_decision_settings_out_of_range_are_refused_before_any_work(
    tiny_engine: FitResult, tiny_labelled: Path, tmp_path: Path, option: list[str], message: str
) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = train_main([
            "--no-progress", "classify", "--engine", str(tiny_engine.engine),
            "--labelled", str(tiny_labelled), "--out", str(tmp_path / "out"), *option,
        ])  # fmt: skip
    assert code == 2 and err.getvalue() == f"partsight-train: error: {message}\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
