"""Inference backends: one interface (InferenceBackend), chosen by kind.

Each backend imports its vendor runtime lazily, so a machine without TensorRT still runs the
ONNX Runtime backend, and a missing runtime only breaks the configuration that asks for it.
"""

from __future__ import annotations

from pathlib import Path

from edge.backends.base import InferenceBackend, ModelOutputs
from edge.errors import InferenceError

BACKEND_KINDS = ("onnxruntime",)


def create_backend(kind: str, model_file: Path, *, threads: int = 0) -> InferenceBackend:
    """The backend of this kind, loaded with the model file."""
    if kind == "onnxruntime":
        from edge.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_file, threads=threads)
    raise InferenceError(f"unknown inference backend {kind!r} (known: {', '.join(BACKEND_KINDS)})")


__all__ = ["BACKEND_KINDS", "InferenceBackend", "ModelOutputs", "create_backend"]
