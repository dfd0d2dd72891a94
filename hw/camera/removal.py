"""Camera-removal detection from two sources, because neither is enough on its own.

pylon's removal event (ConfigurationEventHandler.OnCameraDeviceRemoved) is known not to fire
every time, so the adapter also polls the camera (InstantCamera.IsCameraDeviceRemoved) before
each grab and after each timeout. Once either has seen the removal it stays removed until the
camera is reopened (a new RemovalMonitor).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class RemovalMonitor:
    """Latches the first sign of removal, from the event or from polling `poll`."""

    def __init__(self, poll: Callable[[], bool], name: str = "camera") -> None:
        self._poll = poll
        self._name = name
        # Set from pylon's event thread, read from the grab thread.
        self._event = threading.Event()
        self.detected_by: str | None = None  # "event" or "polling", for the log and the alert

    def on_removed(self) -> None:
        """The removal event fired (called from pylon's thread)."""
        self._event.set()

    def removed(self) -> bool:
        """True once the camera is known to be gone."""
        if self.detected_by is not None:
            return True
        if self._event.is_set():
            self.detected_by = "event"
        else:
            try:
                gone = self._poll()
            except Exception as exc:  # the SDK itself failing to answer is as bad as removal
                log.warning(
                    "%s: removal check failed (%s); treating the camera as removed", self._name, exc
                )
                gone = True
            if not gone:
                return False
            # The case the event exists to catch but missed: worth knowing in the field.
            self.detected_by = "polling"
        # At debug level: the CameraDisconnected this leads to says the same, and is logged once.
        log.debug("%s: camera removed (detected by %s)", self._name, self.detected_by)
        return True
