"""Choosing the inference backend from the configuration section, handed over whole: `auto`
picks what can run here and says so, `tensorrt` without TensorRT refuses to start (exit 2, what
to install), never falling back to the CPU; and `partsight engine build` builds the plan ahead.

This machine has no TensorRT and no GPU: the refusals are real. Where TensorRT must be present,
the test double tests/fakes/tensorrt stands in (with Numba's CUDA simulator as the GPU).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from edge.backends import create_backend, missing_runtime
from edge.cli import main
from edge.config import (
    AutoBackendConfig,
    OnnxRuntimeBackendConfig,
    TensorRtBackendConfig,
    check_config_main,
)
from edge.daemon.verdict import EngineInfo
from edge.errors import BackendUnavailable
from edge.inspector import Inspector
from trainer.fit import FitResult

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "install TensorRT's Python bindings (JetPack: apt install python3-libnvinfer"


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` raises ImportError


def station(tmp_path: Path, engine: Path, backend: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / "partsight.toml"
    path.write_text(f"""
[station]
site = "plant-1"
line = "line-3"
station = "top"
state_dir = "state"

[camera]
kind = "replay"
folder = "images"

[engine]
path = "{engine}"

[engine.backend]
{backend}

[mqtt]
enabled = false

[reject]
kind = "none"
""")
    return path


def test_auto_picks_onnxruntime_here_and_says_why(
    no_tensorrt: None, tiny_engine: FitResult, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        inspector = Inspector.open(tiny_engine.engine, backend=AutoBackendConfig.model_validate({}))
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.backends"]
    assert len(lines) == 1
    assert lines[0].startswith("engine.backend auto: ONNX Runtime on the CPU (no TensorRT here: ")
    assert "TensorRT is not installed" in lines[0]
    info = EngineInfo.of(inspector.bundle, inspector.backend)
    assert (info.name, info.version, info.backend, info.precision) == (
        "tiny",
        "0.1.0",
        "onnxruntime",
        "fp32",
    )


def test_auto_with_tensorrt_but_no_gpu_picks_onnxruntime(
    fake_tensorrt: ModuleType, tiny_engine: FitResult, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="edge.backends"):
        model = create_backend(
            AutoBackendConfig.model_validate({}), tiny_engine.engine / "model.onnx"
        )
    assert model.name == "onnxruntime"
    assert "no usable CUDA GPU" in caplog.text
    assert fake_tensorrt.BUILDS == 0


def test_tensorrt_without_tensorrt_is_refused_with_what_to_install(
    no_tensorrt: None, tiny_engine: FitResult
) -> None:
    with pytest.raises(
        BackendUnavailable, match=r"TensorRT is not installed .*: " + re.escape(INSTALL)
    ):
        create_backend(TensorRtBackendConfig.model_validate({}), tiny_engine.engine / "model.onnx")


def test_tensorrt_without_a_gpu_is_refused(
    fake_tensorrt: ModuleType, tiny_engine: FitResult
) -> None:
    with pytest.raises(BackendUnavailable, match="TensorRT needs a CUDA GPU: Numba finds no"):
        create_backend(TensorRtBackendConfig.model_validate({}), tiny_engine.engine / "model.onnx")


def test_the_daemon_refuses_to_start_with_tensorrt_missing(
    tiny_engine: FitResult, tmp_path: Path
) -> None:
    config = station(tmp_path, tiny_engine.engine, 'kind = "tensorrt"')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "edge.daemon.main", "--config", str(config)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    refusals = [line for line in out.stderr.splitlines() if line.startswith("partsight: ")]
    assert refusals == [
        "partsight: cannot start: TensorRT is not installed (No module named 'tensorrt'): "
        "install TensorRT's Python bindings (JetPack: apt install python3-libnvinfer; x86: pip "
        'install tensorrt), or set engine.backend.kind = "onnxruntime"'
    ]


def test_check_config_knows_tensorrt_is_missing(
    no_tensorrt: None, tiny_engine: FitResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = station(tmp_path, tiny_engine.engine, 'kind = "tensorrt"')
    assert check_config_main(config) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        f'{config}: engine.backend.kind: kind = "tensorrt" but TensorRT is not installed: '
    )
    assert missing_runtime(OnnxRuntimeBackendConfig()) is None
    assert check_config_main(station(tmp_path, tiny_engine.engine, 'kind = "auto"')) == 0


def test_auto_settings_are_validated_with_the_station(
    tiny_engine: FitResult, tmp_path: Path
) -> None:
    from edge.config import load_config

    text = 'kind = "auto"\n[engine.backend.tensorrt]\nfp16 = false\n'
    config = load_config(station(tmp_path, tiny_engine.engine, text), environ={})
    backend = config.engine.backend
    assert isinstance(backend, AutoBackendConfig)
    assert backend.tensorrt.fp16 is False and backend.onnxruntime.threads == 0
    assert backend.tensorrt.cache_dir == tmp_path / "state" / "cache" / "tensorrt"
    bad = station(
        tmp_path, tiny_engine.engine, 'kind = "auto"\n[engine.backend.tensorrt]\nfp8 = true\n'
    )
    assert check_config_main(bad) == 2  # no such feature


def test_engine_build_without_tensorrt_fails_in_one_line(
    no_tensorrt: None, tiny_engine: FitResult, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["engine", "build", "--engine", str(tiny_engine.engine)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("partsight: error: TensorRT is not installed")


def test_engine_build_with_an_onnxruntime_station_has_nothing_to_build(
    tiny_engine: FitResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = station(tmp_path, tiny_engine.engine, 'kind = "onnxruntime"')
    assert (
        main(["engine", "build", "--engine", str(tiny_engine.engine), "--config", str(config)]) == 2
    )
    assert "there is no TensorRT plan to build" in capsys.readouterr().err


BUILD = """
import sys
from tests.fakes import tensorrt  # the TensorRT test double
sys.modules["tensorrt"] = tensorrt
from edge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_engine_build_builds_then_finds_the_plan(tiny_engine: FitResult, tmp_path: Path) -> None:
    # TensorRT's double, and Numba's CUDA simulator as the GPU (set before numba is imported).
    config = station(tmp_path, tiny_engine.engine, 'kind = "tensorrt"\ncache_dir = "plans"')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_ENABLE_CUDASIM": "1"}
    args = ["engine", "build", "--engine", str(tiny_engine.engine), "--config", str(config)]
    runs = [
        subprocess.run(
            [sys.executable, "-c", BUILD, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        for _ in range(2)
    ]
    first, second = runs
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "building a fp32 TensorRT plan for model.onnx on Numba CUDA simulator" in first.stderr
    assert "  Building engine (2 steps)" in first.stderr  # TensorRT's phases, as progress
    plans = sorted((tmp_path / "plans").glob("fp32-*.plan"))
    assert len(plans) == 1
    summary = first.stdout.strip().splitlines()
    assert len(summary) == 1 and f"fp32 TensorRT plan {plans[0]} built in " in summary[0]
    assert summary[0].endswith(" s in all") and "golden samples pass" in summary[0]
    assert "building" not in second.stderr
    assert f"fp32 TensorRT plan {plans[0]} found in the cache" in second.stdout
