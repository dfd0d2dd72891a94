"""The replay camera: a folder of images played back as if a camera took them.

A real, shipped camera (demos, re-inspecting recorded parts, soak tests without hardware), not a
test double. Images are found recursively by the reader every entry point shares
(hw.camera.image_file: PNG, TIFF, BMP, JPEG, ..., suffixes in any case, symbolic links
followed), played in sorted order of their paths, at `rate_hz` paced against the monotonic clock,
optionally looping. Files passed over (not images, hidden) are named in the log when it opens.

- An unreadable image (corrupt, a broken symbolic link) is a Grab with `error` set, like a
  camera's failed buffer (ERROR "camera"); one whose header declares more than `max_pixels` is
  refused undecoded, a Grab with `fault="image"` (NOK "image"). Never an exception: the part
  still gets its verdict and the replay goes on.
- Frames carry `bit_depth=None`: a 16-bit file may hold 12-bit values, the engine decides.
- The frame counter counts every delivered grab, across loops; replay never misses frames.
- The end of the folder without `loop` raises EndOfStream, a CameraError of its own rather than
  CameraDisconnected: the end of a replay is a clean stop, and a reconnecting wrapper must not
  treat it as an outage to retry.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hw.camera.clock import Clock, SystemClock
from hw.camera.image_file import IMAGE_SUFFIXES, list_images, read_image_file
from hw.camera.settings import ReplaySettings
from hw.camera.stats import CameraStats
from hw.errors import (
    CameraConfigError,
    CameraDisconnected,
    CameraTimeout,
    EndOfStream,
    ImageFileError,
    ImageTooLarge,
)
from hw.frame import Grab, GrabFault
from hw.health import Health

log = logging.getLogger(__name__)


class ReplayCamera:
    def __init__(self, settings: ReplaySettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.name = f"replay:{settings.folder.name or settings.folder}"
        self.stats = CameraStats()
        self._clock: Clock = clock or SystemClock()
        self._period_ns = None if settings.rate_hz is None else round(1e9 / settings.rate_hz)
        self._files: list[Path] | None = None  # None while closed
        self._index = 0
        self._counter = 0
        self._due_ns: int | None = None  # when the next frame is due
        self._since = self._clock.time()  # of the last open or close

    @property
    def connected(self) -> bool:
        return self._files is not None

    def health(self) -> Health:
        if self._files is None:
            return Health(state="down", since=self._since, detail=f"{self.name}: not open")
        return Health(state="up", since=self._since)

    def open(self) -> None:
        if self._files is not None:
            return
        folder = self.settings.folder
        if not folder.is_dir():
            raise CameraConfigError(f"folder: {folder} is not a folder")
        listing = list_images([folder])
        for path, why in listing.skipped:
            log.warning("%s: skipping %s: %s", self.name, path, why)
        if not listing.files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise CameraConfigError(f"folder: no images ({suffixes}) under {folder}")
        files = list(listing.files)
        self._files = files
        self._since = self._clock.time()
        self._index = 0
        self._counter = 0
        self._due_ns = None
        log.info(
            "%s: replaying %d images from %s (rate %s Hz, loop %s)",
            self.name,
            len(files),
            folder,
            self.settings.rate_hz,
            self.settings.loop,
        )

    def close(self) -> None:
        if self._files is not None:
            self._since = self._clock.time()
        self._files = None

    def grab(self, timeout_s: float) -> Grab:
        files = self._files
        if files is None:
            raise CameraDisconnected(f"{self.name}: not open")
        if self._index >= len(files):
            if not self.settings.loop:
                raise EndOfStream(f"{self.name}: replay finished ({len(files)} images)")
            self._index = 0
        self._wait_until_due(timeout_s)
        now_ns, wall = self._clock.monotonic_ns(), self._clock.time()
        path = files[self._index]
        self._index += 1
        counter = self._counter
        self._counter += 1
        self.stats.grabs += 1
        image, error = None, None
        fault: GrabFault = "camera"
        try:
            image = read_image_file(path, self.settings.max_pixels)
        except ImageFileError as exc:  # a failed buffer, as a camera would report it
            self.stats.failed_buffers += 1
            log.warning("%s: %s", self.name, exc)
            error = f"unreadable image {path.name}: {exc.why}"
            # Too large is the image's fault, not the camera's: like a frame of the wrong size.
            fault = "image" if isinstance(exc, ImageTooLarge) else "camera"
        return Grab(
            image=image,
            trigger_ns=now_ns,
            wall_time=wall,
            time_source="arrival",
            frame_counter=counter,
            exposure_us=None,
            gain_db=None,
            error=error,
            source=str(path),
            fault=fault,
        )

    def _wait_until_due(self, timeout_s: float) -> None:
        """Sleep until the next frame is due; CameraTimeout if that is beyond timeout_s."""
        if self._period_ns is None:
            return
        now = self._clock.monotonic_ns()
        # Fixed schedule (no drift), but a consumer more than a period late restarts it rather
        # than getting a burst of catch-up frames.
        if self._due_ns is None or now - self._due_ns > self._period_ns:
            self._due_ns = now
        wait_ns = self._due_ns - now
        if wait_ns > timeout_s * 1e9:
            self._clock.sleep(timeout_s)
            self.stats.timeouts += 1
            raise CameraTimeout(f"{self.name}: next frame not due within {timeout_s:g} s")
        self._clock.sleep(wait_ns / 1e9)
        self._due_ns += self._period_ns
