"""Stage 2: the DAE on the registered parts: each part's score, anomaly map and, when the
heatmap classifier needs them, the DAE's reconstruction and the encoder's activations. On the
GPU path the registered crop is cut on the device straight into the backend's input
(edge.gpu.crop); the model input comes back to the host only for the parts a later stage needs
it for (the classifier's features)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge.backends import InferenceBackend, ModelOutputs
from edge.backends.base import concatenate
from edge.errors import InferenceError
from edge.stages.register import Registered

if TYPE_CHECKING:
    from edge.gpu.crop import DeviceCrop


@dataclass(frozen=True)
class Scored:
    """One part through the DAE."""

    score: float
    anomaly_map: np.ndarray  # (H, W) float32 at the model's resolution
    model_input: np.ndarray | None  # (C, H, W) float32; None: left on the GPU
    activation: np.ndarray | None  # (Cf, Hf, Wf) float32 encoder activations, when fetched
    inference_ms: float  # the batch's inference time per part
    reconstruction: np.ndarray | None = None  # (C, H, W) float32, when fetched


def run_model(
    backend: InferenceBackend,
    parts: Sequence[Registered],
    device_crop: DeviceCrop | None = None,
    inputs_from: float | None = None,
) -> list[Scored]:
    """Score ready parts, in order. On the GPU path (`device_crop`) the model input of a part
    whose score is at least `inputs_from` is copied back to the host (None: never).
    InferenceError when the backend fails or returns unusable scores or maps."""
    if not parts:
        return []
    t0 = time.perf_counter()
    if device_crop is None:
        batch = np.stack([p.model_input for p in parts])  # type: ignore[misc]  # host path: set
        outputs, inputs = backend.run(batch), list(batch)
    else:
        outputs, inputs = _on_device(device_crop, parts, inputs_from)
    per_part = (time.perf_counter() - t0) * 1e3 / len(parts)
    scores, maps = outputs.score, outputs.anomaly_map
    if scores.shape != (len(parts),) or not np.all(np.isfinite(scores)):
        raise InferenceError(f"backend returned unusable scores {scores!r}")
    if maps.ndim != 4 or maps.shape[:2] != (len(parts), 1):
        raise InferenceError(f"backend returned maps of shape {maps.shape}")
    activations = outputs.features
    reconstructions = outputs.reconstruction
    if reconstructions is not None and reconstructions.shape[0] != len(parts):
        raise InferenceError(f"backend returned reconstructions of shape {reconstructions.shape}")
    return [
        Scored(
            score=float(scores[i]),
            anomaly_map=maps[i, 0],
            model_input=inputs[i],
            activation=None if activations is None else activations[i],
            inference_ms=per_part,
            reconstruction=None if reconstructions is None else reconstructions[i],
        )
        for i in range(len(parts))
    ]


def _on_device(
    crop: DeviceCrop, parts: Sequence[Registered], inputs_from: float | None
) -> tuple[ModelOutputs, list[np.ndarray | None]]:
    """Cut each registered part out of its frame on the device, max_batch parts at a time."""
    chunks: list[ModelOutputs] = []
    inputs: list[np.ndarray | None] = []
    step = crop.target.max_batch
    for start in range(0, len(parts), step):
        chunk = parts[start : start + step]
        for row, p in enumerate(chunk):
            assert p.registration is not None  # the GPU path is for registering engines
            crop.stage(row, p.image, p.registration.pose)
        out = crop.target.run(len(chunk))
        chunks.append(out)
        wanted = inputs_from is not None and bool(np.any(out.score >= inputs_from))
        rows = crop.target.read(len(chunk)) if wanted else [None] * len(chunk)
        inputs.extend(rows)
    return concatenate(chunks), inputs
