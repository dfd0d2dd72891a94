"""Cameras: one interface (Camera), implementations chosen by the settings' `kind`.

    camera = create_camera(BaslerSettings(serial="40012345", trigger="hardware"))
    camera.open()
    grab = camera.grab(timeout_s=1.0)

CAMERA_KINDS maps each kind to the factory that builds it from its settings; a test checks that
every registered kind honours the Camera interface. Vendor SDKs are imported by the
implementation that needs them, on open(), so building a camera never needs pypylon.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from hw.camera.base import Camera
from hw.camera.clock import Clock, SystemClock
from hw.camera.reconnect import ReconnectingCamera
from hw.camera.settings import BaslerSettings, CameraSettings, ReplaySettings
from hw.camera.stats import CameraStats
from hw.errors import CameraConfigError

CameraFactory = Callable[[Any, Clock], Camera]


def _basler(settings: BaslerSettings, clock: Clock) -> Camera:
    from hw.camera.basler import BaslerCamera

    # A real camera can drop off the network or the bus: the daemon keeps running through it.
    return ReconnectingCamera(
        BaslerCamera(settings, clock=clock),
        min_delay_s=settings.reconnect_min_s,
        max_delay_s=settings.reconnect_max_s,
        clock=clock,
    )


def _replay(settings: ReplaySettings, clock: Clock) -> Camera:
    from hw.camera.replay import ReplayCamera

    return ReplayCamera(settings, clock=clock)


CAMERA_KINDS: Mapping[str, CameraFactory] = MappingProxyType({"basler": _basler, "replay": _replay})


def create_camera(settings: CameraSettings, *, clock: Clock | None = None) -> Camera:
    """The camera these settings describe, not yet opened."""
    factory = CAMERA_KINDS.get(settings.kind)
    if factory is None:
        known = ", ".join(CAMERA_KINDS)
        raise CameraConfigError(f"kind: unknown camera kind {settings.kind!r} (known: {known})")
    return factory(settings, clock or SystemClock())


__all__ = [
    "CAMERA_KINDS",
    "BaslerSettings",
    "Camera",
    "CameraSettings",
    "CameraStats",
    "ReconnectingCamera",
    "ReplaySettings",
    "create_camera",
]
