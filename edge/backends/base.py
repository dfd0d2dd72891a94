"""The interface every inference backend honours, and what it is asked to run.

A backend runs one ONNX graph with one float32 input (batch first) and named outputs: the
denoising autoencoder (image → reconstruction, anomaly map, score[, encoder features]) or the
heatmap classifier (features → nuisance probability, out-of-distribution distance, envelope
excess). ``Graph``
says which outputs the file must have and which ones ``run`` brings back to the host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge.errors import InferenceError
from edge.manifest import DAE_OUTPUTS

if TYPE_CHECKING:
    from edge.gpu.device import CudaDevice


@dataclass(frozen=True)
class Graph:
    """``outputs``: every output the model file must have (in any order: a file with other
    outputs is refused). ``fetch``: the ones ``run`` returns on the host, a subset (TensorRT
    leaves the others on the device: the DAE's reconstruction, unless the heatmap classifier's
    residual features read it)."""

    outputs: tuple[str, ...]
    fetch: tuple[str, ...]

    def __post_init__(self) -> None:
        if not set(self.fetch) <= set(self.outputs):
            raise ValueError(f"fetch {self.fetch} is not a subset of the outputs {self.outputs}")

    @classmethod
    def of(cls, outputs: tuple[str, ...], fetch: tuple[str, ...] | None = None) -> Graph:
        return cls(outputs, outputs if fetch is None else fetch)


DAE_GRAPH = Graph.of(DAE_OUTPUTS)  # what the trainer exports today, everything fetched


@dataclass(frozen=True)
class ModelOutputs:
    """One run's outputs on the host, by graph output name (float32, batch first). The DAE's
    are read through the properties: ``anomaly_map`` (N, 1, H, W), ``score`` (N,),
    ``reconstruction`` (N, C, H, W) and ``features`` (N, Cf, Hf, Wf, the encoder's activations)
    are None when not fetched."""

    arrays: Mapping[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise InferenceError(f"the backend returned no output {name!r}") from None

    @property
    def anomaly_map(self) -> np.ndarray:
        return self["anomaly_map"]

    @property
    def score(self) -> np.ndarray:
        return self["score"]

    @property
    def reconstruction(self) -> np.ndarray | None:
        return self.arrays.get("reconstruction")

    @property
    def features(self) -> np.ndarray | None:
        return self.arrays.get("features")


def concatenate(chunks: list[ModelOutputs]) -> ModelOutputs:
    """Chunks of one batch joined along the batch axis."""
    if len(chunks) == 1:
        return chunks[0]
    names = chunks[0].arrays.keys()
    return ModelOutputs({n: np.concatenate([c.arrays[n] for c in chunks]) for n in names})


@dataclass(frozen=True)
class DeviceInput:
    """A backend's own input buffer on the GPU, for a GPU stage to write the model input into
    (edge.gpu.crop.DeviceCrop), and how to run the model on it then.

    ``buffer``: (max_batch, C, H, W) float32 device array. ``stream``: the CUDA stream the
    writes must be queued on (the backend runs on it too, so no synchronisation is needed in
    between). ``run(n)``: score rows 0..n-1 (1 <= n <= max_batch) and return the fetched
    outputs on the host. ``read(n)``: rows 0..n-1 of the buffer copied to the host (for a
    stage that needs the model input itself: the heatmap classifier's features)."""

    device: CudaDevice
    stream: Any
    buffer: Any
    max_batch: int
    run: Callable[[int], ModelOutputs]
    read: Callable[[int], np.ndarray]


class InferenceBackend(Protocol):
    """``name``: "onnxruntime" | "tensorrt", the backend that really runs (published on the
    retained ``engine`` topic). ``precision``: "fp32" | "fp16". ``golden_rtol``: the relative
    tolerance this backend's arithmetic needs on the golden samples at least (the samples' own
    rtol is used when larger). ``graph``: what it was asked to run."""

    name: str
    precision: str
    golden_rtol: float
    graph: Graph

    def run(self, batch: np.ndarray) -> ModelOutputs:
        """Run a float32 batch (N, ...) (for the DAE: (N, C, H, W) in [0, 1]); the fetched
        outputs. InferenceError on failure."""
        ...

    def device_input(self) -> DeviceInput | None:
        """The input buffer on the GPU, or None for a backend that runs from host memory."""
        ...

    def at_fp32(self, why: str) -> InferenceBackend | None:
        """The same model at full precision, for a reduced-precision backend whose golden
        samples fail (``why``); None when this one already is full precision."""
        ...
