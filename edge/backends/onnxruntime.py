"""ONNX Runtime backend: the portable one, and the reference that the trainer checks its
export against."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edge.backends.base import DAE_GRAPH, DeviceInput, Graph, InferenceBackend, ModelOutputs
from edge.config.engine import OnnxRuntimeSettings
from edge.errors import BackendUnavailable, InferenceError

log = logging.getLogger(__name__)


class OnnxRuntimeBackend:
    """ONNX Runtime on the CPU, configured by its section (default: ONNX Runtime's own
    threading), running `graph` (default: the DAE as the trainer exports it).
    BackendUnavailable when onnxruntime is not installed; InferenceError when the file cannot
    be loaded or its outputs are not the graph's."""

    name = "onnxruntime"
    precision = "fp32"
    golden_rtol = 0.0  # the reference: the golden scores were computed with it

    def __init__(
        self,
        model_file: Path,
        config: OnnxRuntimeSettings | None = None,
        graph: Graph = DAE_GRAPH,
    ) -> None:
        settings = config or OnnxRuntimeSettings()
        self.graph = graph
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailable(
                "ONNX Runtime is not installed: pip install 'partsight[edge]' (or onnxruntime)"
            ) from exc
        options = ort.SessionOptions()
        if settings.threads:
            options.intra_op_num_threads = settings.threads
        options.log_severity_level = 3  # warnings about unused initialisers are noise on the line
        try:
            self._session = ort.InferenceSession(
                str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped errors: map them here
            raise InferenceError(f"{model_file}: ONNX Runtime cannot load it ({exc})") from exc
        inputs = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or sorted(outputs) != sorted(graph.outputs):
            raise InferenceError(
                f"{model_file}: has {len(inputs)} input(s) and outputs {outputs}, expected 1 "
                f"input and outputs {list(graph.outputs)}"
            )
        self._input = inputs[0].name

    def run(self, batch: np.ndarray) -> ModelOutputs:
        fetch = list(self.graph.fetch)
        try:
            arrays = self._session.run(fetch, {self._input: batch})
        except Exception as exc:
            raise InferenceError(f"ONNX Runtime failed: {exc}") from exc
        return ModelOutputs(dict(zip(fetch, arrays, strict=True)))

    def device_input(self) -> DeviceInput | None:
        return None  # runs from host memory

    def at_fp32(self, why: str) -> InferenceBackend | None:
        return None  # FP32 already
