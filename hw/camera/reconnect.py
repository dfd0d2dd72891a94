"""ReconnectingCamera: keeps a camera usable through outages, so the daemon never restarts for
a camera fault.

While the camera is gone every grab raises CameraDisconnected at once (the pipeline turns each
trigger in the outage into ERROR "camera"), and a grab reopens the camera when the back-off
allows: first `min_delay_s` after the loss, then doubling up to `max_delay_s`, back to
`min_delay_s` once it is up again. A reconnection attempt runs inside the grab that finds it due
(and costs one open). A camera absent at start-up starts the daemon in an outage rather than
failing it; a configuration the camera refuses at start-up still fails, since retrying cannot
fix it. health() says which it is (up; or down, why, and when the next attempt comes), so the
daemon can show it on `status` and in STATUS, and hardware-trigger loops can wait for the next
attempt instead of spinning. One line when the camera is lost and one when it is back; attempts
that find it still gone are logged at debug level only.
"""

from __future__ import annotations

import logging

from hw.camera.base import Camera
from hw.camera.clock import Clock, SystemClock
from hw.errors import CameraDisconnected, CameraError
from hw.frame import Grab
from hw.health import Health

log = logging.getLogger(__name__)


class ReconnectingCamera:
    def __init__(
        self,
        camera: Camera,
        *,
        min_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if not 0 < min_delay_s <= max_delay_s:
            raise ValueError(
                f"need 0 < min_delay_s <= max_delay_s, got {min_delay_s}, {max_delay_s}"
            )
        self.camera = camera
        self.name = camera.name
        self.stats = camera.stats  # one set of counters per physical camera
        self._min = min_delay_s
        self._max = max_delay_s
        self._clock: Clock = clock or SystemClock()
        self._opened = False
        self._delay = min_delay_s
        self._retry_at: float | None = None  # set while in an outage
        self._since = self._clock.time()  # of the last loss or return
        self._why = ""  # why the camera is gone

    @property
    def connected(self) -> bool:
        return self._opened and self._retry_at is None and self.camera.connected

    def health(self) -> Health:
        if not self._opened:
            return Health(state="down", since=self._since, detail=f"{self.name}: not open")
        if self._retry_at is None:
            return Health(state="up", since=self._since)
        return Health(
            state="down",
            since=self._since,
            detail=f"{self._why}; every part is rejected (ERROR camera) until it is back",
            retry_in_s=max(0.0, self._retry_at - self._clock.monotonic()),
        )

    def open(self) -> None:
        if self._opened:
            return
        self._opened = True
        try:
            self.camera.open()
        except CameraDisconnected as exc:
            log.error("%s: camera not available at start (%s); will keep trying", self.name, exc)
            self._start_outage(exc)

    def close(self) -> None:
        self._opened = False
        self._retry_at = None
        self.camera.close()

    def grab(self, timeout_s: float) -> Grab:
        if not self._opened:
            raise CameraDisconnected(f"{self.name}: not open")
        if self._retry_at is not None:
            self._reconnect()
        try:
            return self.camera.grab(timeout_s)
        except CameraDisconnected as exc:
            log.error("%s: camera lost (%s); reconnecting in %.1f s", self.name, exc, self._min)
            self._start_outage(exc)
            raise

    def _start_outage(self, exc: CameraError) -> None:
        self.camera.close()
        self.stats.disconnects += 1
        self._delay = self._min
        self._retry_at = self._clock.monotonic() + self._delay
        self._since, self._why = self._clock.time(), f"camera lost: {exc}"

    def _reconnect(self) -> None:
        """Reopen the camera if an attempt is due; CameraDisconnected if it stays unavailable."""
        assert self._retry_at is not None
        wait = self._retry_at - self._clock.monotonic()
        if wait > 0:
            raise CameraDisconnected(
                f"{self.name}: disconnected; next reconnection attempt in {wait:.1f} s"
            )
        try:
            self.camera.open()
        except CameraError as exc:  # a replacement camera that refuses the settings included
            self.camera.close()
            self.stats.reconnect_failures += 1
            self._delay = min(self._delay * 2, self._max)
            self._retry_at = self._clock.monotonic() + self._delay
            # Still gone is no news; a camera that is there and refuses the settings is.
            still_gone = isinstance(exc, CameraDisconnected)
            log.log(
                logging.DEBUG if still_gone else logging.WARNING,
                "%s: reconnection failed (%s); next attempt in %.1f s",
                self.name,
                exc,
                self._delay,
            )
            if not still_gone:
                self._why = f"the camera refuses its settings: {exc}"
            raise CameraDisconnected(
                f"{self.name}: reconnection failed ({exc}); next attempt in {self._delay:.1f} s"
            ) from exc
        lost_s = self._clock.time() - self._since
        self._retry_at = None
        self._delay = self._min
        self._since, self._why = self._clock.time(), ""
        self.stats.reconnects += 1
        log.info("%s: camera reconnected after %.1f s", self.name, lost_s)
