"""The interface every inference backend honours."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from edge.gpu.device import CudaDevice


@dataclass(frozen=True)
class ModelOutputs:
    reconstruction: np.ndarray | None  # (N, C, H, W) float32; None: left on the device
    anomaly_map: np.ndarray  # (N, 1, H, W) float32
    score: np.ndarray  # (N,) float32


@dataclass(frozen=True)
class DeviceInput:
    """A backend's own input buffer on the GPU, for a GPU stage to write the model input into
    (edge.gpu.crop.DeviceCrop), and how to run the model on it then.

    ``buffer``: (max_batch, C, H, W) float32 device array. ``stream``: the CUDA stream the
    writes must be queued on (the backend runs on it too, so no synchronisation is needed in
    between). ``run(n)``: score rows 0..n-1 (1 <= n <= max_batch) and return the outputs on
    the host."""

    device: CudaDevice
    stream: Any
    buffer: Any
    max_batch: int
    run: Callable[[int], ModelOutputs]


class InferenceBackend(Protocol):
    """``name``: "onnxruntime" | "tensorrt", the backend that really runs (published on the
    retained ``engine`` topic). ``precision``: "fp32" | "fp16". ``golden_rtol``: the relative
    tolerance this backend's arithmetic needs on the golden samples at least (the samples' own
    rtol is used when larger)."""

    name: str
    precision: str
    golden_rtol: float

    def run(self, batch: np.ndarray) -> ModelOutputs:
        """Score a float32 (N, C, H, W) batch in [0, 1]. InferenceError on failure."""
        ...

    def device_input(self) -> DeviceInput | None:
        """The input buffer on the GPU, or None for a backend that runs from host memory."""
        ...

    def at_fp32(self, why: str) -> InferenceBackend | None:
        """The same model at full precision, for a reduced-precision backend whose golden
        samples fail (``why``); None when this one already is full precision."""
        ...
