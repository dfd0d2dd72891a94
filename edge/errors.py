"""The edge runtime's exceptions.

PartSightError
├── ImageError        an image file or frame that cannot be judged (unreadable, corrupt, wrong size)
├── BundleError       an engine bundle that is missing, malformed or fails its hash checks
│   └── EngineFitError  an engine whose frames this station's camera does not give
└── InferenceError    the inference backend failed or returned something unexpected
    └── BackendUnavailable  the backend the configuration asks for cannot run on this machine
                            (its runtime or its GPU is missing); the message says what to install

Each carries a one-line message meant for logs and CLI output.
"""

from __future__ import annotations


class PartSightError(Exception):
    """Base of every error PartSight raises on purpose."""


class ImageError(PartSightError):
    """An image that cannot be judged. `source` names the file (or frame) it came from."""

    def __init__(self, source: str, why: str) -> None:
        super().__init__(f"{source}: {why}")
        self.source = source
        self.why = why


class BundleError(PartSightError):
    """An engine bundle that must not be loaded."""


class EngineFitError(BundleError):
    """An engine that takes frames this station's camera does not give (its channels, or an
    ROI outside the sizes it judges): every part would be NOK "image"."""


class InferenceError(PartSightError):
    """The inference backend could not score an image."""


class BackendUnavailable(InferenceError):
    """The configured inference backend cannot run here: a missing runtime or GPU."""
