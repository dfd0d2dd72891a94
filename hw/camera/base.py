"""The interface every camera honours (Basler, replay, and the ReconnectingCamera wrapper)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from hw.camera.stats import CameraStats
from hw.frame import Grab
from hw.health import Health


@runtime_checkable
class Camera(Protocol):
    name: str  # for logs and alerts, e.g. "basler:40012345" or "replay:parts"
    stats: CameraStats

    def open(self) -> None:
        """Connect and configure. Idempotent. CameraConfigError for settings the camera refuses
        (or a missing SDK), CameraDisconnected if the camera is absent."""
        ...

    def close(self) -> None:
        """Stop and disconnect. Idempotent; never raises."""
        ...

    def grab(self, timeout_s: float) -> Grab:
        """The next frame. Software trigger: trigger, then wait for its frame. Hardware trigger
        (and replay): wait for the next frame. Raises CameraTimeout when none comes within
        timeout_s and CameraDisconnected when the camera is gone; a failed or incomplete buffer
        is returned as Grab(image=None, error=...)."""
        ...

    @property
    def connected(self) -> bool:
        """True while open and not known to be gone."""
        ...

    def health(self) -> Health:
        """up while the camera delivers; down while it is gone (with when the next
        reconnection attempt comes, for a camera that reconnects)."""
        ...
