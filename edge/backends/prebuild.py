"""`partsight engine build --engine DIR [--config FILE]`: build and cache an engine's TensorRT
plans (the DAE's, and its heatmap classifier's if it has one) ahead of time, so the first part
after a restart is not judged 40 s late.

The plan is built exactly as the daemon would build it (the same section of the configuration
when --config is given: the same cache folder, precision policy and batch profile; otherwise
TensorRT's defaults, cached under <state_dir>/cache/tensorrt), then the engine's golden samples
run through it (an FP16 plan that misses them is replaced by an FP32 one, as at start-up).
Progress goes to stderr; the summary line, with the time it took, to stdout.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from edge.config import AutoBackendConfig, OnnxRuntimeBackendConfig, TensorRtBackendConfig
from edge.config.check import load_or_report
from edge.config.engine import TensorRtSettings

EXIT_OK, EXIT_FAILED = 0, 2
_TICK_S = 10.0


def build_plan_main(engine: Path, config_file: Path | None = None) -> int:
    """Build (or find cached) and check the plan; 0, or 2 with one line on stderr saying why
    not (PartSightError raised for the CLI to print)."""
    from edge.backends.tensorrt import TensorRtBackend, import_tensorrt
    from edge.bundle import load_bundle
    from edge.gpu.device import CudaDevice
    from edge.inspector import Inspector, model_graph
    from edge.stages.classify import CLASSIFIER_GRAPH

    started = time.perf_counter()
    settings: TensorRtSettings
    registration_device, min_confidence = "auto", None
    if config_file is None:
        settings = TensorRtBackendConfig.model_validate({})
    else:
        config = load_or_report(config_file)
        if config is None:
            return EXIT_FAILED
        backend = config.engine.backend
        if isinstance(backend, OnnxRuntimeBackendConfig):
            print(f"partsight: error: {config_file}: engine.backend.kind is \"onnxruntime\": "
                  "there is no TensorRT plan to build", file=sys.stderr)  # fmt: skip
            return EXIT_FAILED
        settings = backend.tensorrt if isinstance(backend, AutoBackendConfig) else backend
        registration_device = config.registration.device
        min_confidence = config.registration.min_confidence
    import_tensorrt()
    device = CudaDevice.open()
    bundle = load_bundle(engine)
    manifest = bundle.manifest
    spec = manifest.classifier
    with _ticking(started):
        plan = TensorRtBackend(bundle.path(manifest.model.file), settings, device=device,
                               progress=_progress, graph=model_graph(manifest))  # fmt: skip
        classifier = None if spec is None else TensorRtBackend(
            bundle.path(spec.file), settings, device=device, progress=_progress,
            graph=CLASSIFIER_GRAPH,
        )  # fmt: skip
        inspector = Inspector(bundle, plan, None, registration_device, min_confidence,
                              classifier_backend=classifier)  # fmt: skip
        inspector.check_golden()
    described = [_described(inspector.backend)]
    if inspector.classifier is not None:
        described.append(f"classifier {_described(inspector.classifier.backend)}")
    print(f"{engine}: {', '.join(described)}; golden samples pass; "
          f"{time.perf_counter() - started:.1f} s in all")  # fmt: skip
    return EXIT_OK


def _described(plan: object) -> str:
    from edge.backends.tensorrt import TensorRtBackend

    assert isinstance(plan, TensorRtBackend)
    how = (
        "found in the cache" if plan.build_seconds is None else
        f"built in {plan.build_seconds:.1f} s"
    )  # fmt: skip
    return f"{plan.precision} TensorRT plan {plan.plan_path} {how}"


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _ticking(started: float) -> Iterator[None]:
    """A line on stderr every 10 s while TensorRT works (its phases can take a minute)."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(_TICK_S):
            _progress(f"  ... {time.perf_counter() - started:.0f} s")

    thread = threading.Thread(target=tick, name="engine-build-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
