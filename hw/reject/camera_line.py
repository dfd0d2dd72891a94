"""Camera output-line reject (pypylon): a camera digital output driven as a user output.

Shares the open camera device through the camera adapter's `instant_camera`, so it works while
the camera grabs. open() selects LineN, sets LineMode Output and LineSource UserOutputK; each
pulse edge writes UserOutputValue for UserOutputK.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hw.errors import OutputError

log = logging.getLogger(__name__)


class CameraLineActuator:
    def __init__(self, camera: Callable[[], Any], *, line: int = 1, user_output: int = 1) -> None:
        """`camera` returns the open pylon InstantCamera (e.g. lambda: adapter.instant_camera)."""
        self.name = "camera_line"
        self._camera = camera
        self.line, self.user_output = line, user_output
        self._opened = False

    def open(self) -> None:
        if self._opened:
            return
        cam = self._device()
        try:
            cam.LineSelector.SetValue(f"Line{self.line}")
            cam.LineMode.SetValue("Output")
            cam.LineSource.SetValue(f"UserOutput{self.user_output}")
            cam.UserOutputSelector.SetValue(f"UserOutput{self.user_output}")
            cam.UserOutputValue.SetValue(False)
        except Exception as exc:  # genicam errors: no such line, feature not writable
            raise OutputError(
                f"camera line reject: cannot set Line{self.line} to UserOutput{self.user_output}"
                f": {exc}"
            ) from exc
        self._opened = True
        log.info("reject output: camera Line%d (UserOutput%d)", self.line, self.user_output)

    def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        try:
            self.set(False)
        except OutputError as exc:  # the camera is gone: the scheduler reports the outage
            log.debug("camera line reject: could not turn the output off: %s", exc)

    def set(self, on: bool, part_id: int | None = None) -> None:
        cam = self._device()
        try:
            cam.UserOutputSelector.SetValue(f"UserOutput{self.user_output}")
            cam.UserOutputValue.SetValue(on)
        except Exception as exc:
            raise OutputError(f"camera line reject: UserOutputValue {on}: {exc}") from exc

    def value(self) -> bool:
        """The user output's current value, read back from the camera."""
        cam = self._device()
        try:
            cam.UserOutputSelector.SetValue(f"UserOutput{self.user_output}")
            return bool(cam.UserOutputValue.GetValue())
        except Exception as exc:
            raise OutputError(f"camera line reject: read UserOutputValue: {exc}") from exc

    def _device(self) -> Any:
        cam = self._camera()
        if cam is None:
            raise OutputError("camera line reject: the camera is not open")
        return cam
