"""Inference backends: one interface (InferenceBackend), one factory taking the configuration's
backend section whole, chosen by its `kind`.

- ``onnxruntime``: ONNX Runtime on the CPU.
- ``tensorrt``: TensorRT on the GPU; BackendUnavailable (the daemon exits 2, saying what to
  install) when TensorRT or the GPU is missing: never a silent fall-back to the CPU.
- ``auto``: TensorRT when it imports and Numba sees a CUDA GPU, else ONNX Runtime; one log line
  says which and why, and the backend's ``name``/``precision`` say what really runs.

Each backend imports its vendor runtime lazily, so a machine without TensorRT still runs ONNX
Runtime, and a missing runtime only breaks the configuration that asks for it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from edge.backends.base import DAE_GRAPH, DeviceInput, Graph, InferenceBackend, ModelOutputs
from edge.config.engine import (
    AutoBackendConfig,
    BackendConfig,
    OnnxRuntimeBackendConfig,
    OnnxRuntimeSettings,
    TensorRtSettings,
)
from edge.errors import BackendUnavailable

log = logging.getLogger(__name__)

BACKEND_KINDS = ("onnxruntime", "tensorrt", "auto")


def create_backend(
    config: BackendConfig, model_file: Path, graph: Graph = DAE_GRAPH
) -> InferenceBackend:
    """The backend the section asks for, loaded with the model file (ONNX) that `graph`
    describes: the DAE, or the heatmap classifier (the same section runs both).

    BackendUnavailable when its runtime (or GPU) is missing; InferenceError when the model
    cannot be loaded or built."""
    if isinstance(config, OnnxRuntimeBackendConfig):
        return _onnxruntime(config, model_file, graph)
    if isinstance(config, AutoBackendConfig):
        why_not = tensorrt_unusable()
        if why_not is None:
            backend = _tensorrt(config.tensorrt, model_file, graph)
            log.info("engine.backend auto: %s", backend)
            return backend
        log.info("engine.backend auto: ONNX Runtime on the CPU (no TensorRT here: %s)", why_not)
        return _onnxruntime(config.onnxruntime, model_file, graph)
    return _tensorrt(config, model_file, graph)


def tensorrt_unusable() -> str | None:
    """Why TensorRT cannot run here (not installed, no GPU), or None when it can."""
    from edge.backends.tensorrt import import_tensorrt
    from edge.gpu.device import CudaDevice, GpuUnavailable

    try:
        import_tensorrt()
        CudaDevice.open()
    except (BackendUnavailable, GpuUnavailable) as exc:
        return str(exc)
    return None


def missing_runtime(config: BackendConfig) -> str | None:
    """A cheap check for `check-config`: the one-line reason the backend cannot start here
    because its Python package is not installed, or None. (Whether a GPU is present is only
    known by asking the driver, which start-up does.)"""
    from edge.backends.tensorrt import INSTALL_HINT

    if config.kind == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
        return f'kind = "tensorrt" but TensorRT is not installed: {INSTALL_HINT}'
    if config.kind == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        return 'kind = "onnxruntime" but ONNX Runtime is not installed: pip install onnxruntime'
    return None


def _onnxruntime(config: OnnxRuntimeSettings, model_file: Path, graph: Graph) -> InferenceBackend:
    from edge.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model_file, config, graph)


def _tensorrt(config: TensorRtSettings, model_file: Path, graph: Graph) -> InferenceBackend:
    from edge.backends.tensorrt import TensorRtBackend, import_tensorrt
    from edge.gpu.device import CudaDevice, GpuUnavailable

    import_tensorrt()  # first: "not installed" is the more useful message
    try:
        device = CudaDevice.open()
    except GpuUnavailable as exc:
        raise BackendUnavailable(f"TensorRT needs a CUDA GPU: {exc}") from exc
    return TensorRtBackend(model_file, config, device=device, graph=graph)


__all__ = [
    "BACKEND_KINDS",
    "DAE_GRAPH",
    "BackendUnavailable",
    "DeviceInput",
    "Graph",
    "InferenceBackend",
    "ModelOutputs",
    "create_backend",
    "missing_runtime",
    "tensorrt_unusable",
]
