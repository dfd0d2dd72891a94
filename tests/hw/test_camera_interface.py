"""Every registered camera kind honours the Camera interface (convention 4)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from hw.camera import CAMERA_KINDS, BaslerSettings, ReplaySettings, create_camera
from hw.camera.base import Camera
from hw.camera.reconnect import ReconnectingCamera
from hw.camera.stats import CameraStats
from hw.errors import CameraConfigError, CameraDisconnected

# One valid settings object per kind; a kind registered without one here fails the test below.
SAMPLE_SETTINGS: dict[str, Any] = {
    "basler": BaslerSettings(serial="00000000"),
    "replay": ReplaySettings(folder=Path("no-such-folder")),
}

METHODS = {"open": [], "close": [], "grab": ["timeout_s"]}


def test_every_kind_has_sample_settings() -> None:
    assert set(CAMERA_KINDS) == set(SAMPLE_SETTINGS)


def _cameras(kind: str) -> list[Camera]:
    """The camera create_camera builds, and the camera inside it if it wraps one."""
    camera = create_camera(SAMPLE_SETTINGS[kind])
    inner = [camera.camera] if isinstance(camera, ReconnectingCamera) else []
    return [camera, *inner]


@pytest.mark.parametrize("kind", sorted(SAMPLE_SETTINGS))
def test_kind_honours_the_camera_interface(kind: str) -> None:
    for camera in _cameras(kind):
        assert isinstance(camera, Camera), type(camera)
        assert isinstance(camera.name, str) and camera.name
        assert isinstance(camera.stats, CameraStats)
        assert isinstance(inspect.getattr_static(type(camera), "connected"), property)
        for method, params in METHODS.items():
            signature = inspect.signature(getattr(camera, method))
            assert list(signature.parameters) == params, (type(camera), method)


@pytest.mark.parametrize("kind", sorted(SAMPLE_SETTINGS))
def test_kind_is_built_closed_and_behaves_closed(kind: str) -> None:
    """Building a camera touches no hardware (and no SDK); a closed camera refuses to grab and
    closes again without complaint."""
    for camera in _cameras(kind):
        assert camera.connected is False
        camera.close()
        camera.close()
        with pytest.raises(CameraDisconnected):
            camera.grab(0.01)


def test_an_unknown_kind_is_a_config_error() -> None:
    class Other:
        kind = "gige-generic"

    with pytest.raises(CameraConfigError, match="gige-generic"):
        create_camera(Other())  # type: ignore[arg-type]
