"""A test double of TensorRT 10's Python API (``import tensorrt``), for machines without it.

Nothing here can run the real TensorRT: there is no NVIDIA GPU, and TensorRT's wheels need
NVIDIA's package index. This fake implements the calls ``edge/backends/tensorrt.py`` makes,
with TensorRT's names, signatures and failure conventions (``parse`` and the context's setters
return False, ``build_serialized_network`` and ``deserialize_cuda_engine`` return None, and
errors go to the Logger), and computes with ONNX Runtime behind them:

- ``OnnxParser.parse`` loads the ONNX bytes into ONNX Runtime to learn the network's tensors
  (batch axis dynamic, -1, as TensorRT reports it).
- ``Builder.build_serialized_network`` checks the optimisation profile covers the input and
  returns a "plan": ``MAGIC``, a JSON header saying what it was built from (TensorRT version,
  GPU, precision, profile, flags) and the ONNX bytes. The builder config's timing cache gains
  an entry per build. A progress monitor, if set, hears one phase with its steps.
- ``Runtime.deserialize_cuda_engine`` returns None for bytes that are not such a plan, or a
  plan built by another TensorRT version or for another GPU (``CURRENT_GPU``), as TensorRT
  refuses plans it cannot run.
- Device memory is whatever the backend allocates: under Numba's CUDA simulator, host arrays
  standing in for device memory. ``set_tensor_address`` takes their (integer) addresses and
  ``execute_async_v3`` reads the input from, and writes the outputs to, those addresses with
  ctypes, synchronously (``executions`` records the stream handle of each call).
- FP16 plans: every output is rounded through float16. The score of a plan of precision P is
  then multiplied by ``1 + SCORE_ERROR[P]`` (0 by default; a test raises it to make a plan
  that computes something else, so that it misses its golden samples).

``BUILDS`` counts the plans built in this process, so tests can tell a cache hit from a build.
"""

from __future__ import annotations

import ctypes
import enum
import hashlib
import json
from typing import Any

import numpy as np
import onnxruntime as ort

__version__ = "10.3.0"
MAGIC = b"FAKE-TRT-PLAN\n"
CURRENT_GPU = "Numba CUDA simulator"  # the GPU plans are deserialized on
SCORE_ERROR = {"fp16": 0.0, "fp32": 0.0}
BUILDS = 0
executions: list[int] = []  # stream handles given to execute_async_v3


class Logger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity: int = 1) -> None:
        self.min_severity = min_severity
        self.messages: list[tuple[int, str]] = []

    def log(self, severity: int, msg: str) -> None:
        self.messages.append((severity, msg))


class IProgressMonitor:
    def __init__(self) -> None:
        pass


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0  # deprecated in TensorRT 10: explicit batch is the only mode
    STRONGLY_TYPED = 1


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    INT8 = 1
    TF32 = 6


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1


class IHostMemory(bytes):
    """Serialized data (TensorRT's supports the buffer protocol, like bytes)."""


class ITensor:
    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name = name
        self.shape = shape


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.onnx: bytes | None = None
        self.inputs: list[ITensor] = []
        self.outputs: list[ITensor] = []

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, index: int) -> ITensor:
        return self.inputs[index]


def _dims(shape: list[Any]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else -1 for d in shape)


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
        self.network = network
        self.logger = logger
        self.errors: list[str] = []

    def parse(self, model: bytes) -> bool:
        try:
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's own errors, as TensorRT's parser would report them
            self.errors.append(f"ModelImporter: {exc}")
            return False
        self.network.onnx = bytes(model)
        self.network.inputs = [ITensor(i.name, _dims(i.shape)) for i in session.get_inputs()]
        self.network.outputs = [ITensor(o.name, _dims(o.shape)) for o in session.get_outputs()]
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class ITimingCache:
    def __init__(self, data: bytes) -> None:
        self.entries: list[str] = json.loads(data) if data else []

    def serialize(self) -> IHostMemory:
        return IHostMemory(json.dumps(self.entries).encode())


class IBuilderConfig:
    def __init__(self) -> None:
        self.flags = {BuilderFlag.TF32}  # TensorRT enables TF32 by default
        self.pools: dict[MemoryPoolType, int] = {}
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None
        self.progress_monitor: IProgressMonitor | None = None

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        self.pools[pool] = int(size)

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.add(flag)

    def clear_flag(self, flag: BuilderFlag) -> None:
        self.flags.discard(flag)

    def get_flag(self, flag: BuilderFlag) -> bool:
        return flag in self.flags

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized: bytes) -> ITimingCache:
        return ITimingCache(bytes(serialized))

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.timing_cache


class Builder:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(
        self, network: INetworkDefinition, config: IBuilderConfig
    ) -> IHostMemory | None:
        global BUILDS
        if network.onnx is None or not config.profiles:
            self.logger.log(Logger.ERROR, "no network parsed, or no optimisation profile")
            return None
        profile = config.profiles[0]
        for tensor in network.inputs:
            shapes = profile.shapes.get(tensor.name)
            if shapes is None or any(len(s) != len(tensor.shape) for s in shapes):
                self.logger.log(Logger.ERROR, f"profile does not cover input {tensor.name}")
                return None
            fixed = [d for d in tensor.shape[1:]]
            if any(list(s[1:]) != fixed for s in shapes):
                self.logger.log(Logger.ERROR, f"profile {shapes} vs input {tensor.shape}")
                return None
        monitor = config.progress_monitor
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)  # type: ignore[attr-defined]
            for step in range(2):
                monitor.step_complete("Building engine", step)  # type: ignore[attr-defined]
            monitor.phase_finish("Building engine")  # type: ignore[attr-defined]
        precision = "fp16" if config.get_flag(BuilderFlag.FP16) else "fp32"
        header = {
            "tensorrt": __version__,
            "gpu": CURRENT_GPU,
            "precision": precision,
            "tf32": config.get_flag(BuilderFlag.TF32),
            "workspace": config.pools.get(MemoryPoolType.WORKSPACE),
            "profile": {k: [list(s) for s in v] for k, v in profile.shapes.items()},
            "onnx_sha256": hashlib.sha256(network.onnx).hexdigest(),
        }
        if config.timing_cache is not None:
            config.timing_cache.entries.append(header["onnx_sha256"][:16])
        BUILDS += 1
        head = json.dumps(header).encode()
        return IHostMemory(MAGIC + len(head).to_bytes(4, "little") + head + network.onnx)


def read_plan(plan: bytes) -> tuple[dict[str, Any], bytes] | None:
    """(header, ONNX bytes) of a fake plan, or None if it is not one (tests read headers)."""
    plan = bytes(plan)
    if not plan.startswith(MAGIC) or len(plan) < len(MAGIC) + 4:
        return None
    size = int.from_bytes(plan[len(MAGIC) : len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4
    try:
        header = json.loads(plan[start : start + size])
    except ValueError:
        return None
    onnx = plan[start + size :]
    if hashlib.sha256(onnx).hexdigest() != header.get("onnx_sha256"):
        return None
    return header, onnx


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, plan: bytes) -> ICudaEngine | None:
        read = read_plan(plan)
        if read is None:
            self.logger.log(Logger.ERROR, "deserialize: not a serialized engine (corrupt?)")
            return None
        header, onnx = read
        if header["tensorrt"] != __version__ or header["gpu"] != CURRENT_GPU:
            self.logger.log(Logger.ERROR, "deserialize: built by another TensorRT or GPU")
            return None
        return ICudaEngine(header, onnx)


class ICudaEngine:
    def __init__(self, header: dict[str, Any], onnx: bytes) -> None:
        self.header = header
        self.session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: _dims(i.shape) for i in self.session.get_inputs()}
        self.outputs = {o.name: _dims(o.shape) for o in self.session.get_outputs()}
        self.names = [*self.inputs, *self.outputs]

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        if name in self.inputs:
            return TensorIOMode.INPUT
        return TensorIOMode.OUTPUT if name in self.outputs else TensorIOMode.NONE

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.inputs.get(name) or self.outputs[name]

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType.FLOAT  # IO stays float32, FP16 plans included

    def create_execution_context(self) -> IExecutionContext:
        return IExecutionContext(self)


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: Any) -> bool:
        shape = tuple(int(d) for d in shape)
        low, _, high = self.engine.header["profile"][name]
        if len(shape) != len(low):
            return False
        if any(not lo <= d <= hi for d, lo, hi in zip(shape, low, high, strict=True)):
            return False
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if name in self.engine.inputs:
            return self.shapes.get(name, self.engine.inputs[name])
        batch = next(iter(self.shapes.values()), (-1,))[0]
        return tuple(batch if d == -1 else d for d in self.engine.outputs[name])

    def set_tensor_address(self, name: str, address: int) -> bool:
        if name not in self.engine.names or not address:
            return False
        self.addresses[name] = int(address)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        executions.append(stream_handle)
        if set(self.addresses) != set(self.engine.names) or len(self.shapes) != 1:
            return False
        ((name, shape),) = self.shapes.items()
        outputs = self.engine.session.run(None, {name: _at(self.addresses[name], shape).copy()})
        for out_name, value in zip(self.engine.outputs, outputs, strict=True):
            value = np.asarray(value, dtype=np.float32)
            precision = self.engine.header["precision"]
            if precision == "fp16":
                value = value.astype(np.float16).astype(np.float32)
            if out_name == "score":
                value = value * np.float32(1.0 + SCORE_ERROR[precision])
            np.copyto(_at(self.addresses[out_name], value.shape), value)
        return True


def _at(address: int, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 array of ``shape`` at ``address`` (memory the caller owns)."""
    count = int(np.prod(shape))
    buffer = (ctypes.c_float * count).from_address(address)
    return np.ctypeslib.as_array(buffer).reshape(shape)
