"""The trainer's exceptions (the edge runtime's live in edge.errors).

TrainerError
├── DatasetError   a dataset folder that cannot be used as it is (layout, images, sizes)
├── ExportError    the exported ONNX graph disagrees with the torch model
└── SigningError   a signing key or an engine that cannot be signed (permissions, format)
"""

from __future__ import annotations


class TrainerError(Exception):
    """Base of the trainer's deliberate errors."""


class DatasetError(TrainerError):
    """The dataset cannot be used; the message names the folder or file and what is wrong."""


class ExportError(TrainerError):
    """The exported graph does not compute what the torch model computes."""


class SigningError(TrainerError):
    """A key that must not be used (too open, not Ed25519) or an engine that cannot be signed."""
