"""TensorRT backend (TensorRT 10 Python API, imported lazily): the GPU path of the Jetson.

Plan. Built on the device from the bundle's ONNX file (TensorRT 10 networks are explicit-batch
only; the ONNX batch axis is dynamic) with one optimisation profile: batches 1..max_batch,
tuned for 1 (the daemon judges one part at a time; ``partsight inspect`` sends up to
max_batch). FP32 plans have TF32 switched off, so FP32 means FP32. FP16 is tried when the
configuration allows it and the GPU has fast FP16 (compute capability 5.3, 6.0, 6.2 and 7.0 or
newer; TensorRT deprecated its own query in 10.5); input and outputs stay FP32 either way.
The plan is cached by ``plan_cache`` (key: ONNX sha256, TensorRT version, GPU name and compute
capability, precision, max batch; a plan whose key or hash does not check out is rebuilt).

Golden samples. An FP16 plan is kept only if every golden sample scores within
``FP16_GOLDEN_RTOL`` = 1 % of its expected score (or the sample's own rtol if larger): the
DAE's score is a mean of squared errors, which FP16 shifts by ~1e-3 relative, and a score 1 %
off moves a decision only for a part within 1 % of the threshold. Otherwise the Inspector asks
``at_fp32`` for an FP32 plan and the rejection is remembered in the cache. FP32 plans must meet
the samples' own rtol (1e-3 by default), like ONNX Runtime.

Memory. Input and output buffers are Numba device arrays (``edge.gpu.device``: the one CUDA
binding of the GPU path, and why it is Numba), allocated once for max_batch and bound with
``set_tensor_address`` once; everything runs on the backend's own CUDA stream. One backend per
inspection worker, hence one stream per worker. ``run`` copies a host batch in (H2D) and the
outputs the graph fetches out (D2H: the score and anomaly map, the encoder's activations when
the heatmap classifier pools them, the reconstruction when its residual features read it;
otherwise the reconstruction never leaves the device). The heatmap classifier's graph
(features in; probability, distance and envelope excess out) runs on a backend of its own,
built and cached the same way. ``device_input`` exposes the input buffer so that a GPU stage
(the registered crop, ``edge.gpu.crop``) writes the model input there directly and no host
copy of it exists (``read`` copies rows back when a later stage needs them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.backends.base import (
    DAE_GRAPH,
    DeviceInput,
    Graph,
    InferenceBackend,
    ModelOutputs,
    concatenate,
)
from edge.backends.plan_cache import PlanCache, PlanKey, file_sha256
from edge.config.engine import TensorRtSettings
from edge.errors import BackendUnavailable, InferenceError
from edge.gpu.device import CudaDevice

log = logging.getLogger(__name__)

FP16_GOLDEN_RTOL = 1e-2
INSTALL_HINT = (
    "install TensorRT's Python bindings (JetPack: apt install python3-libnvinfer; "
    'x86: pip install tensorrt), or set engine.backend.kind = "onnxruntime"'
)


def import_tensorrt() -> Any:
    """The tensorrt module, or BackendUnavailable saying what to install."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(f"TensorRT is not installed ({exc}): {INSTALL_HINT}") from exc
    return tensorrt


def has_fast_fp16(compute_capability: tuple[int, int]) -> bool:
    """Native full-rate FP16 arithmetic (CUDA programming guide, arithmetic throughput table):
    5.3 (Jetson TX1), 6.0, 6.2 (TX2) and 7.0 onwards; not 6.1 (consumer Pascal)."""
    return compute_capability in ((5, 3), (6, 0), (6, 2)) or compute_capability >= (7, 0)


class TensorRtBackend:
    """A model of the bundle (``graph``: the DAE by default, or the heatmap classifier) as a
    TensorRT plan on ``device``.

    ``precision``: None chooses (FP16 when allowed, fast, and not rejected before; else FP32).
    ``progress`` receives one line per build phase (``partsight engine build`` prints them).
    BackendUnavailable without TensorRT; InferenceError when the plan cannot be built or run.
    After construction ``plan_path`` is the cached plan and ``build_seconds`` how long it took
    to build (None when it came from the cache)."""

    name = "tensorrt"

    def __init__(
        self,
        model_file: Path,
        config: TensorRtSettings,
        *,
        device: CudaDevice,
        precision: str | None = None,
        progress: Callable[[str], None] | None = None,
        graph: Graph = DAE_GRAPH,
    ) -> None:
        self._trt = trt = import_tensorrt()
        self.graph = graph
        self.model_file = model_file
        self.config = config
        self.device = device
        self._progress = progress
        self._logger = trt.Logger(trt.Logger.WARNING)
        self.cache = PlanCache(config.cache_dir)
        cc = device.compute_capability
        fp32_key = PlanKey(
            onnx_sha256=file_sha256(model_file),
            tensorrt=str(trt.__version__),
            gpu=device.name,
            compute_capability=f"{cc[0]}.{cc[1]}",
            precision="fp32",
            max_batch=config.max_batch,
        )
        self.precision = precision or self._choose_precision(fp32_key)
        self.golden_rtol = FP16_GOLDEN_RTOL if self.precision == "fp16" else 0.0
        self.key = fp32_key.with_precision(self.precision)
        self.plan_path = self.cache.plan_path(self.key)
        self.build_seconds: float | None = None
        self._engine = self._load_engine()
        self._bind()

    def __str__(self) -> str:
        return f"TensorRT {self.key.tensorrt} {self.precision} on {self.device}"

    def _choose_precision(self, key: PlanKey) -> str:
        if not self.config.fp16:
            return "fp32"
        if not has_fast_fp16(self.device.compute_capability):
            log.info("TensorRT: %s has no fast FP16: FP32 plan", self.device)
            return "fp32"
        rejected = self.cache.fp16_rejected(key)
        if rejected:
            log.info("TensorRT: the FP16 plan failed its golden samples before (%s): FP32",
                     rejected)  # fmt: skip
            return "fp32"
        return "fp16"

    # -- the plan -------------------------------------------------------------------------

    def _load_engine(self) -> Any:
        trt = self._trt
        runtime = trt.Runtime(self._logger)
        plan = self.cache.load(self.key)
        if plan is not None:
            engine = _call(runtime.deserialize_cuda_engine, plan)
            if engine is not None:
                log.info("TensorRT plan %s loaded (%s)", self.plan_path.name, self.precision)
                return engine
            log.warning("TensorRT refused the cached plan %s: rebuilding", self.plan_path.name)
            self.cache.discard(self.key)
        plan = self._build()
        engine = _call(runtime.deserialize_cuda_engine, plan)
        if engine is None:
            raise InferenceError(f"{self.model_file}: TensorRT cannot load the plan it just built")
        return engine

    def _build(self) -> bytes:
        trt = self._trt
        started = time.perf_counter()
        self._say(f"building a {self.precision} TensorRT plan for {self.model_file.name} on "
                  f"{self.device} (batch 1..{self.config.max_batch})")  # fmt: skip
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
        parser = trt.OnnxParser(network, self._logger)
        if not _call(parser.parse, self.model_file.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise InferenceError(f"{self.model_file}: TensorRT cannot parse it: {errors}")
        if network.num_inputs != 1:
            raise InferenceError(f"{self.model_file}: expected 1 input, got {network.num_inputs}")
        image = network.get_input(0)
        chw = tuple(int(d) for d in image.shape[1:])
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.config.workspace_mb << 20)
        config.clear_flag(trt.BuilderFlag.TF32)  # FP32 means FP32
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        profile.set_shape(image.name, (1, *chw), (1, *chw), (self.config.max_batch, *chw))
        config.add_optimization_profile(profile)
        timing = config.create_timing_cache(self.cache.load_timing(self.key))
        config.set_timing_cache(timing, False)
        if self._progress is not None:
            config.progress_monitor = _monitor(trt, self._say)
        plan = _call(builder.build_serialized_network, network, config)
        if plan is None:
            raise InferenceError(f"{self.model_file}: TensorRT could not build a plan (see log)")
        data = bytes(memoryview(plan))
        self.build_seconds = time.perf_counter() - started
        self.cache.store(self.key, data, self.build_seconds)
        self.cache.store_timing(self.key, bytes(memoryview(config.get_timing_cache().serialize())))
        log.info("TensorRT plan %s built in %.1f s", self.plan_path.name, self.build_seconds)
        return data

    def _say(self, line: str) -> None:
        log.info("%s", line)
        if self._progress is not None:
            self._progress(line)

    # -- buffers and execution ------------------------------------------------------------

    def _bind(self) -> None:
        trt, engine, device = self._trt, self._engine, self.device
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or sorted(outputs) != sorted(self.graph.outputs):
            raise InferenceError(
                f"{self.model_file}: the plan has inputs {inputs} and outputs {outputs}, "
                f"expected 1 input and {list(self.graph.outputs)}"
            )
        for name in names:
            if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise InferenceError(f"{self.model_file}: tensor {name} is not float32")
        self._input = inputs[0]
        self._chw = tuple(int(d) for d in engine.get_tensor_shape(self._input))[1:]
        self._context = engine.create_execution_context()
        self.stream = device.stream()
        max_shape = (self.config.max_batch, *self._chw)
        if not self._context.set_input_shape(self._input, max_shape):
            raise InferenceError(f"{self.model_file}: the plan refuses batch {max_shape}")
        self._buffers = {self._input: device.empty(max_shape, np.float32, self.stream)}
        for name in outputs:
            shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
            self._buffers[name] = device.empty(shape, np.float32, self.stream)
        for name, buffer in self._buffers.items():
            if not self._context.set_tensor_address(name, device.pointer(buffer)):
                raise InferenceError(f"TensorRT refused the address of tensor {name}")

    def _execute(self, n: int) -> ModelOutputs:
        """Run rows 0..n-1 of the input buffer (already written on the stream)."""
        if not 1 <= n <= self.config.max_batch:
            raise InferenceError(f"batch of {n}: the plan takes 1..{self.config.max_batch}")
        if not _call(self._context.set_input_shape, self._input, (n, *self._chw)):
            raise InferenceError(f"TensorRT refused the input shape {(n, *self._chw)}")
        if not _call(self._context.execute_async_v3, self.device.stream_handle(self.stream)):
            raise InferenceError("TensorRT execute_async_v3 failed (see log)")
        arrays = {
            name: self.device.download(self._buffers[name][:n], self.stream)
            for name in self.graph.fetch
        }
        self.device.synchronize(self.stream)
        return ModelOutputs(arrays)

    def _read(self, n: int) -> np.ndarray:
        """Rows 0..n-1 of the input buffer, on the host."""
        rows = self.device.download(self._buffers[self._input][:n], self.stream)
        self.device.synchronize(self.stream)
        return rows

    def run(self, batch: np.ndarray) -> ModelOutputs:
        if tuple(batch.shape[1:]) != self._chw or batch.dtype != np.float32:
            raise InferenceError(
                f"batch {batch.shape} {batch.dtype}: expected (N, {', '.join(map(str, self._chw))})"
                " float32"
            )
        chunks = []
        rows = self._buffers[self._input]
        for start in range(0, len(batch), self.config.max_batch):
            chunk = batch[start : start + self.config.max_batch]
            self.device.upload(chunk, self.stream, out=rows[: len(chunk)])
            chunks.append(self._execute(len(chunk)))
        return concatenate(chunks)

    def device_input(self) -> DeviceInput | None:
        return DeviceInput(
            device=self.device,
            stream=self.stream,
            buffer=self._buffers[self._input],
            max_batch=self.config.max_batch,
            run=self._execute,
            read=self._read,
        )

    def at_fp32(self, why: str) -> InferenceBackend | None:
        if self.precision == "fp32":
            return None
        self.cache.reject_fp16(self.key, why)
        return TensorRtBackend(
            self.model_file, self.config, device=self.device, precision="fp32",
            progress=self._progress, graph=self.graph,
        )  # fmt: skip


def _call(function: Callable[..., Any], *args: Any) -> Any:
    """A TensorRT call with its Python exceptions mapped to InferenceError."""
    try:
        return function(*args)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InferenceError(f"TensorRT: {exc}") from exc


def _monitor(trt: Any, say: Callable[[str], None]) -> Any:
    """A TensorRT IProgressMonitor that reports each top-level build phase."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            if parent_phase is None:
                say(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True  # True: go on building

        def phase_finish(self, phase_name: str) -> None:
            return None

    return Monitor()
