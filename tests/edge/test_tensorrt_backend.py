"""The TensorRT backend, against the TensorRT 10 test double (tests/fakes/tensorrt: ONNX Runtime
behind TensorRT's API, since nothing here can run TensorRT) and Numba's CUDA simulator standing
in for the GPU (device arrays are host arrays; the kernels run as Python threads).

What it shows: the backend scores exactly like ONNX Runtime (the same verdicts, scores and
regions on the test set), also when the registered crop is cut on the "GPU" straight into its
input; plans are cached under a key of everything they depend on, and a stale, corrupt, foreign
or refused plan is rebuilt, never used; FP16 is kept only when the golden samples pass.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge.backends.plan_cache import PlanCache, PlanKey
from edge.backends.tensorrt import FP16_GOLDEN_RTOL, TensorRtBackend, has_fast_fp16
from edge.bundle import load_bundle
from edge.config import TensorRtBackendConfig
from edge.errors import BundleError
from edge.gpu.device import CudaDevice
from edge.images import find_images
from edge.inspector import Inspection, Inspector, inspect_files
from trainer.fit import FitResult


def settings(cache: Path, **extra: object) -> TensorRtBackendConfig:
    return TensorRtBackendConfig.model_validate({"cache_dir": str(cache), **extra})


def backend(
    engine: Path, cache: Path, device: CudaDevice | None = None, **extra: object
) -> TensorRtBackend:
    bundle = load_bundle(engine)
    return TensorRtBackend(
        bundle.path(bundle.manifest.model.file), settings(cache, **extra),
        device=device or CudaDevice.simulator(),
    )  # fmt: skip


def judged(results: Iterable[tuple[Path, object]]) -> list[Inspection]:
    out = []
    for _, r in results:
        assert isinstance(r, Inspection)
        out.append(r)
    return out


def test_same_scores_and_verdicts_as_onnxruntime_on_the_test_set(
    fake_tensorrt: ModuleType, tiny_engine: FitResult, tiny_dataset: Path, tmp_path: Path
) -> None:
    trt = Inspector(load_bundle(tiny_engine.engine), backend(tiny_engine.engine, tmp_path))
    trt.check_golden()
    ort = Inspector.open(tiny_engine.engine)
    paths = list(find_images([tiny_dataset / "test"]).files)
    got = judged(inspect_files(trt, paths, batch_size=8))
    want = judged(inspect_files(ort, paths, batch_size=8))
    assert len(got) == len(paths) >= 40
    assert [g.score for g in got] == [w.score for w in want]  # bit for bit: same model, fp32
    assert [g.verdict for g in got] == [w.verdict for w in want]
    assert {w.verdict for w in want} == {"OK", "NOK"}  # the set has both kinds
    assert [g.regions for g in got] == [w.regions for w in want]
    assert (trt.backend.name, trt.backend.precision) == ("tensorrt", "fp32")
    assert fake_tensorrt.executions and set(fake_tensorrt.executions) == {0}  # the stream


def test_the_dae_and_its_classifier_both_run_in_tensorrt_and_decide_alike(
    fake_tensorrt: ModuleType,
    tiny_classified: tuple[Path, str],
    tiny_test_set: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One backend section runs the DAE and the heatmap classifier: on TensorRT both are
    plans, and the classes and probabilities are ONNX Runtime's."""
    monkeypatch.setattr(CudaDevice, "open", classmethod(lambda cls: CudaDevice.simulator()))
    engine, _ = tiny_classified
    trt = Inspector.open(engine, backend=settings(tmp_path))
    assert trt.classifier is not None
    assert (trt.backend.name, trt.classifier.backend.name) == ("tensorrt", "tensorrt")
    ort = Inspector.open(engine)
    paths = list(find_images([tiny_test_set]).files)
    got = judged(inspect_files(trt, paths, batch_size=8))
    want = judged(inspect_files(ort, paths, batch_size=8))
    assert [(g.verdict, g.reason, g.defect_class) for g in got] == [
        (w.verdict, w.reason, w.defect_class) for w in want
    ]
    assert {w.defect_class for w in want} >= {"defect", "nuisance"}  # both classes decided
    for g, w in zip(got, want, strict=True):
        assert (g.class_probability is None) == (w.class_probability is None)
        if w.class_probability is not None:
            assert g.class_probability == pytest.approx(w.class_probability, abs=1e-6)
    assert fake_tensorrt.BUILDS == 2  # two plans: the DAE's and the classifier's


def test_registered_crop_cut_on_the_gpu_scores_like_the_host_path(
    fake_tensorrt: ModuleType, posed_engine: tuple[Path, FitResult], tmp_path: Path
) -> None:
    root, fitted = posed_engine
    bundle = load_bundle(fitted.engine)
    plan = backend(fitted.engine, tmp_path)
    gpu = Inspector(bundle, plan, registration_device="cpu", crop_on_device=True)
    gpu.check_golden()  # the golden samples go through the GPU crop too
    host = Inspector.open(fitted.engine, registration_device="cpu")
    paths = list(find_images([root / "test"]).files)[:5]
    got = judged(inspect_files(gpu, paths, batch_size=4))
    want = judged(inspect_files(host, paths, batch_size=4))
    assert [g.verdict for g in got] == [w.verdict for w in want]
    assert [g.score for g in got] == [w.score for w in want]  # 8-bit crops: the same pixels
    assert all(g.model_input is None for g in got)  # the model input never came to the host
    assert all(w.model_input is not None for w in want)
    assert [g.pose for g in got] == [w.pose for w in want]


def test_the_plan_is_built_once_then_loaded_from_the_cache(
    fake_tensorrt: ModuleType, tiny_engine: FitResult, tmp_path: Path
) -> None:
    first = backend(tiny_engine.engine, tmp_path)
    assert fake_tensorrt.BUILDS == 1 and first.build_seconds is not None
    record = json.loads(first.cache.key_path(first.key).read_text())
    assert record["key"] == first.key.as_dict()
    assert record["key"]["tensorrt"] == "10.3.0" and record["key"]["max_batch"] == 8
    header, _ = fake_tensorrt.read_plan(first.plan_path.read_bytes())
    assert header["tf32"] is False and header["precision"] == "fp32"
    assert header["profile"]["image"] == [[1, 1, 64, 64], [1, 1, 64, 64], [8, 1, 64, 64]]
    assert header["workspace"] == 1024 << 20
    second = backend(tiny_engine.engine, tmp_path)
    assert fake_tensorrt.BUILDS == 1 and second.build_seconds is None
    assert second.plan_path == first.plan_path


def _corrupt(plan: Path, key: Path, other: Path) -> None:
    data = bytearray(plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    plan.write_bytes(bytes(data))


def _truncated(plan: Path, key: Path, other: Path) -> None:
    plan.write_bytes(plan.read_bytes()[:100])


def _stale(plan: Path, key: Path, other: Path) -> None:
    record = json.loads(key.read_text())
    record["key"]["tensorrt"] = "8.6.1"  # built by the TensorRT before the JetPack upgrade
    key.write_text(json.dumps(record))


def _foreign(plan: Path, key: Path, other: Path) -> None:
    # Another engine's plan and key file, copied under this plan's name.
    shutil.copyfile(other, plan)
    shutil.copyfile(other.with_suffix(".json"), key)


def _key_lost(plan: Path, key: Path, other: Path) -> None:
    key.unlink()


@pytest.mark.parametrize(
    ("damage", "logged"),
    [
        (_corrupt, "does not match its recorded sha256"),
        (_truncated, "does not match its recorded sha256"),
        (_stale, "was built for another tensorrt: rebuilding"),
        (_foreign, "was built for another onnx_sha256: rebuilding"),
        (_key_lost, "key file is missing or unreadable"),
    ],
)
def test_a_plan_that_does_not_check_out_is_rebuilt(
    damage: object,
    logged: str,
    fake_tensorrt: ModuleType,
    tiny_engine: FitResult,
    posed_engine: tuple[Path, FitResult],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = backend(posed_engine[1].engine, tmp_path / "other").plan_path
    first = backend(tiny_engine.engine, tmp_path)
    good = first.plan_path.read_bytes()
    assert callable(damage)
    damage(first.plan_path, first.cache.key_path(first.key), other)
    builds = fake_tensorrt.BUILDS
    with caplog.at_level(logging.WARNING, logger="edge.backends.plan_cache"):
        again = backend(tiny_engine.engine, tmp_path)
    assert logged in caplog.text
    assert (fake_tensorrt.BUILDS, again.build_seconds is None) == (builds + 1, False)
    assert again.plan_path.read_bytes() == good  # rebuilt from this engine's ONNX
    assert again.run(np.zeros((1, 1, 64, 64), np.float32)).score.shape == (1,)


def test_a_plan_tensorrt_refuses_is_rebuilt(
    fake_tensorrt: ModuleType,
    tiny_engine: FitResult,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Same key and hash, but TensorRT itself cannot deserialize it (as after a driver change).
    first = backend(tiny_engine.engine, tmp_path)
    fake_tensorrt.CURRENT_GPU = "another GPU"
    header, _ = fake_tensorrt.read_plan(first.plan_path.read_bytes())
    assert header["gpu"] == "Numba CUDA simulator"
    with caplog.at_level(logging.WARNING):
        again = backend(tiny_engine.engine, tmp_path)
    assert "TensorRT refused the cached plan" in caplog.text
    assert fake_tensorrt.BUILDS == 2 and again.build_seconds is not None
    assert fake_tensorrt.read_plan(again.plan_path.read_bytes())[0]["gpu"] == "another GPU"


KEY = PlanKey("ab" * 32, "10.3.0", "Orin", "8.7", "fp16", 8)


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "cd" * 32},
        {"tensorrt": "10.4.0"},
        {"gpu": "Xavier"},
        {"compute_capability": "7.2"},
        {"precision": "fp32"},
        {"max_batch": 4},
    ],
)
def test_every_part_of_the_key_names_another_plan(change: dict[str, object]) -> None:
    other = PlanKey(**{**KEY.as_dict(), **change})  # type: ignore[arg-type]
    cache = PlanCache(Path("/cache"))
    assert other.digest != KEY.digest and cache.plan_path(other) != cache.plan_path(KEY)
    if "precision" not in change and "max_batch" not in change and "onnx_sha256" not in change:
        assert cache.timing_path(other) != cache.timing_path(KEY)  # per TensorRT and GPU
    else:
        assert cache.timing_path(other) == cache.timing_path(KEY)  # shared across models


def test_the_key_follows_the_onnx_file_tensorrt_and_gpu(
    fake_tensorrt: ModuleType,
    tiny_engine: FitResult,
    posed_engine: tuple[Path, FitResult],
    tmp_path: Path,
) -> None:
    base = backend(tiny_engine.engine, tmp_path)
    keys = {base.key}
    keys.add(backend(posed_engine[1].engine, tmp_path).key)
    fake_tensorrt.__version__ = "10.4.0"
    keys.add(backend(tiny_engine.engine, tmp_path).key)
    device = CudaDevice.simulator()
    device.name = "NVIDIA Jetson AGX Orin"
    fake_tensorrt.CURRENT_GPU = device.name
    keys.add(backend(tiny_engine.engine, tmp_path, device).key)
    device.compute_capability = (8, 7)
    keys.add(backend(tiny_engine.engine, tmp_path, device, fp16=False).key)
    keys.add(backend(tiny_engine.engine, tmp_path, device).key)  # fp16 on a fast-FP16 GPU
    assert len(keys) == 6 and fake_tensorrt.BUILDS == 6
    assert {k.precision for k in keys} == {"fp32", "fp16"}
    # the timing cache is per TensorRT version and GPU: the Orin's holds both its builds
    [orin] = {k.device_digest for k in keys if k.compute_capability == "8.7"}
    timing = base.cache.directory / f"timing-{orin}.cache"
    assert len(json.loads(timing.read_bytes())) == 2


def test_fast_fp16_is_a_property_of_the_gpu() -> None:
    assert [has_fast_fp16(cc) for cc in [(5, 2), (5, 3), (6, 1), (6, 2), (7, 2), (8, 7)]] == [
        False, True, False, True, True, True,
    ]  # fmt: skip


def _orin() -> CudaDevice:
    device = CudaDevice.simulator()
    device.compute_capability = (8, 7)
    return device


def test_fp16_is_kept_when_the_golden_samples_pass(
    fake_tensorrt: ModuleType, tiny_engine: FitResult, tmp_path: Path
) -> None:
    plan = backend(tiny_engine.engine, tmp_path, _orin())
    inspector = Inspector(load_bundle(tiny_engine.engine), plan)
    inspector.check_golden()
    assert inspector.backend is plan and plan.precision == "fp16"
    assert plan.golden_rtol == FP16_GOLDEN_RTOL
    sample = inspector.bundle.manifest.golden[0]
    got = inspector.inspect(np.asarray(_read(inspector, sample.file))).score
    assert got != sample.expected_score  # float16 outputs really differ ...
    assert got == pytest.approx(sample.expected_score, rel=FP16_GOLDEN_RTOL)  # ... within 1 %


def _read(inspector: Inspector, name: str) -> np.ndarray:
    from edge.images import read_image

    return read_image(inspector.bundle.path(name))


def test_fp16_that_misses_the_golden_samples_falls_back_to_fp32_and_is_remembered(
    fake_tensorrt: ModuleType,
    tiny_engine: FitResult,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_tensorrt.SCORE_ERROR["fp16"] = 0.05  # FP16 scores 5 % off: past the 1 % tolerance
    plan = backend(tiny_engine.engine, tmp_path, _orin())
    inspector = Inspector(load_bundle(tiny_engine.engine), plan)
    with caplog.at_level(logging.WARNING):
        inspector.check_golden()
    assert "fp16 precision is not good enough, using fp32" in caplog.text
    assert (inspector.backend.name, inspector.backend.precision) == ("tensorrt", "fp32")
    assert fake_tensorrt.BUILDS == 2
    again = backend(tiny_engine.engine, tmp_path, _orin())  # the next start: straight to FP32
    assert again.precision == "fp32" and fake_tensorrt.BUILDS == 2


def test_a_plan_that_computes_something_else_never_judges_a_part(
    fake_tensorrt: ModuleType, tiny_engine: FitResult, tmp_path: Path
) -> None:
    fake_tensorrt.SCORE_ERROR["fp32"] = 0.01  # 1 % off: past the samples' own rtol (1e-3)
    inspector = Inspector(load_bundle(tiny_engine.engine), backend(tiny_engine.engine, tmp_path))
    with pytest.raises(BundleError, match=r"golden sample .* \(rtol 0.001, tensorrt fp32\)"):
        inspector.check_golden()
