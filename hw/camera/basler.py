"""The Basler camera adapter, through pypylon (imported lazily, on open()).

One InstantCamera grabbing continuously with the OneByOne strategy: every frame the camera
sends is handed over in order, so a frame is never silently replaced by a newer one.

- Software trigger: grab() drops any late frame still queued (it belongs to an earlier,
  already failed trigger), waits until the camera is ready, triggers, and waits for the frame.
- Hardware trigger: grab() waits for the next frame; the timestamp is its arrival.
- Failed or incomplete buffers come back as Grab(image=None, error=...) and are counted.
- BlockID jumps are reported as Grab.missed (the frames the camera sent that never arrived).
- Removal is detected both by pylon's removal event and by polling IsCameraDeviceRemoved(),
  since the event is known not to fire every time (see removal.py).
- Every pylon/GenICam exception is mapped to hw.errors with the original chained.
"""

from __future__ import annotations

import functools
import logging
from types import ModuleType
from typing import Any

import numpy as np

from hw.camera.basler_features import Features
from hw.camera.basler_setup import Applied, apply_settings
from hw.camera.clock import Clock, SystemClock
from hw.camera.counter import GapCounter
from hw.camera.pixels import pixel_format, to_image
from hw.camera.pylon_sdk import load_pylon, short_message
from hw.camera.removal import RemovalMonitor
from hw.camera.settings import BaslerSettings
from hw.camera.stats import CameraStats
from hw.errors import CameraConfigError, CameraDisconnected, CameraTimeout
from hw.frame import Grab, GrabFault, TimeSource
from hw.health import Health

log = logging.getLogger(__name__)

# Upper bound on late frames dropped before one software trigger (the default pool is 10).
_MAX_STALE = 64


class BaslerCamera:
    def __init__(self, settings: BaslerSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.name = f"basler:{settings.serial or 'first'}"
        self.stats = CameraStats()
        self._clock: Clock = clock or SystemClock()
        self._format = pixel_format(settings.pixel_format)
        self._pylon: ModuleType | None = None
        self._genicam: ModuleType | None = None
        self._camera: Any = None  # pylon.InstantCamera while open
        self._handler: Any = None  # owned by the InstantCamera (Cleanup_Delete)
        self._removal: RemovalMonitor | None = None
        self._applied: Applied | None = None
        self._gaps = GapCounter()
        self._since = self._clock.time()  # of the last open or close

    @property
    def instant_camera(self) -> Any:
        """The open pylon InstantCamera (None while closed), for what shares the device: the
        camera-line reject output and emulation-only test features."""
        return self._camera

    @property
    def connected(self) -> bool:
        return (
            self._camera is not None and self._removal is not None and not self._removal.removed()
        )

    def health(self) -> Health:
        """up while open and present; down otherwise (ReconnectingCamera says more)."""
        if self.connected:
            return Health(state="up", since=self._since)
        return Health(state="down", since=self._since, detail=f"{self.name}: not open")

    # -- open / close -----------------------------------------------------------------------

    def open(self) -> None:
        if self._camera is not None:
            return
        pylon, genicam = load_pylon()
        self._pylon, self._genicam = pylon, genicam
        device = self._find_device(pylon, genicam)
        camera = pylon.InstantCamera()
        removal = RemovalMonitor(camera.IsCameraDeviceRemoved, self.name)
        handler = _removal_handler(pylon, removal)
        self._camera, self._handler, self._removal = camera, handler, removal
        try:
            camera.Attach(pylon.TlFactory.GetInstance().CreateDevice(device))
            camera.RegisterConfiguration(
                handler, pylon.RegistrationMode_Append, pylon.Cleanup_Delete
            )
            camera.Open()
        except genicam.GenericException as exc:
            self.close()
            raise CameraDisconnected(
                f"{self.name}: cannot open the camera: {short_message(exc)}"
            ) from exc
        try:
            self._applied = apply_settings(
                Features(camera.GetNodeMap(), genicam), self.settings, self._format
            )
            camera.StartGrabbing(pylon.GrabStrategy_OneByOne)
        except CameraConfigError:
            gone = removal.removed()
            self.close()
            if gone:
                raise CameraDisconnected(f"{self.name}: camera removed while configuring") from None
            raise
        except genicam.GenericException as exc:
            self.close()
            raise CameraDisconnected(
                f"{self.name}: cannot start grabbing: {short_message(exc)}"
            ) from exc
        self._gaps.reset()  # BlockID restarts with acquisition
        self._since = self._clock.time()
        info = camera.GetDeviceInfo()
        log.info(
            "%s: opened %s %s (%s, %s trigger, %dx%d, exposure %s us, gain %s dB)",
            self.name,
            info.GetModelName(),
            info.GetSerialNumber(),
            self._applied.camera_pixel_format,
            self.settings.trigger,
            self._applied.width,
            self._applied.height,
            self._applied.exposure_us,
            self._applied.gain_db,
        )

    def _find_device(self, pylon: ModuleType, genicam: ModuleType) -> Any:
        factory = pylon.TlFactory.GetInstance()
        wanted = pylon.DeviceInfo()
        if self.settings.serial is not None:
            wanted.SetSerialNumber(self.settings.serial)
        try:
            devices = factory.EnumerateDevices([wanted])
        except genicam.GenericException as exc:
            raise CameraDisconnected(
                f"{self.name}: cannot list cameras: {short_message(exc)}"
            ) from exc
        if not devices:
            found = ", ".join(d.GetSerialNumber() for d in factory.EnumerateDevices()) or "none"
            which = f"with serial {self.settings.serial}" if self.settings.serial else "at all"
            raise CameraDisconnected(
                f"{self.name}: no Basler camera found {which} (found: {found})"
            )
        return devices[0]

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        self._since = self._clock.time()
        genicam = self._genicam
        assert genicam is not None
        handler = self._handler
        # Deregistering the removal handler lets pylon free the InstantCamera: while registered,
        # the handler keeps the camera alive and with it ~32 pipes (its wait objects), which
        # leaked at every close, i.e. at every reconnect of a camera that comes and goes.
        steps = [camera.StopGrabbing, camera.Close, camera.DestroyDevice]
        if handler is not None:
            steps.append(lambda: camera.DeregisterConfiguration(handler))
        for step in steps:
            try:
                step()
            except genicam.GenericException as exc:  # a removed camera refuses some of these
                log.debug("%s: closing step failed: %s", self.name, short_message(exc))
        self._handler = None
        self._removal = None
        self._applied = None

    # -- grabbing ---------------------------------------------------------------------------

    def grab(self, timeout_s: float) -> Grab:
        camera = self._camera
        if camera is None:
            raise CameraDisconnected(f"{self.name}: not open")
        pylon, genicam = self._pylon, self._genicam
        assert pylon is not None and genicam is not None
        self._check_removed()
        deadline = self._clock.monotonic() + timeout_s
        try:
            if self.settings.trigger == "software":
                trigger_ns, wall = self._trigger(camera, pylon, timeout_s)
            result = camera.RetrieveResult(
                _ms(deadline - self._clock.monotonic()), pylon.TimeoutHandling_Return
            )
        except genicam.GenericException as exc:
            self._check_removed()
            # Unexpected SDK state: only reopening helps, which is what Disconnected leads to.
            raise CameraDisconnected(f"{self.name}: grab failed: {short_message(exc)}") from exc
        source: TimeSource = "trigger"
        if self.settings.trigger == "hardware":
            trigger_ns, wall, source = self._clock.monotonic_ns(), self._clock.time(), "arrival"
        try:
            if not result.IsValid():
                self._check_removed()  # a removed camera looks like a timeout: poll
                self.stats.timeouts += 1
                raise CameraTimeout(f"{self.name}: no frame within {timeout_s:g} s")
            return self._to_grab(result, trigger_ns, wall, source)
        finally:
            result.Release()  # give the buffer back to the pool now, not when Python frees it

    def _trigger(self, camera: Any, pylon: ModuleType, timeout_s: float) -> tuple[int, float]:
        self._drop_stale(camera, pylon)
        if not camera.WaitForFrameTriggerReady(_ms(timeout_s), pylon.TimeoutHandling_Return):
            self._check_removed()
            self.stats.timeouts += 1
            raise CameraTimeout(
                f"{self.name}: camera not ready for a trigger within {timeout_s:g} s"
            )
        trigger_ns, wall = self._clock.monotonic_ns(), self._clock.time()
        camera.ExecuteSoftwareTrigger()
        return trigger_ns, wall

    def _drop_stale(self, camera: Any, pylon: ModuleType) -> None:
        """Throw away frames that arrived after their grab timed out: handing one out now would
        pair this trigger's part with an earlier part's image."""
        for _ in range(_MAX_STALE):
            result = camera.RetrieveResult(0, pylon.TimeoutHandling_Return)
            try:
                if not result.IsValid():
                    return
                counter = _block_id(result)
                self.stats.missed_frames += self._gaps.update(counter)
                self.stats.stale_frames += 1
                log.warning("%s: dropped a late frame (BlockID %s)", self.name, counter)
            finally:
                result.Release()

    def _to_grab(self, result: Any, trigger_ns: int, wall: float, source: TimeSource) -> Grab:
        assert self._applied is not None
        counter = _block_id(result)
        missed = self._gaps.update(counter)
        if missed:
            self.stats.missed_frames += missed
            log.warning("%s: %d frame(s) lost before BlockID %s", self.name, missed, counter)
        self.stats.grabs += 1
        image, error, fault = self._image(result)
        if error is not None:
            self.stats.failed_buffers += 1
            log.warning("%s: %s (BlockID %s)", self.name, error, counter)
        return Grab(
            image=image,
            trigger_ns=trigger_ns,
            wall_time=wall,
            time_source=source,
            frame_counter=counter,
            exposure_us=self._applied.exposure_us,
            gain_db=self._applied.gain_db,
            error=error,
            missed=missed,
            fault=fault,
            # to_image brings 10- and 12-bit values MSB-aligned into 16 bits
            bit_depth=None if image is None else 8 * image.itemsize,
        )

    def _image(self, result: Any) -> tuple[np.ndarray | None, str | None, GrabFault]:
        """The frame's image, or None, why it cannot be used and whose fault that is."""
        assert self._applied is not None and self._genicam is not None
        if not result.GrabSucceeded():
            code, why = result.GetErrorCode(), result.GetErrorDescription()
            return None, f"incomplete buffer (error {code:#x}: {why})", "camera"
        size = (result.GetWidth(), result.GetHeight())
        configured = (self._applied.width, self._applied.height)
        if size != configured:
            wrong = "wrong frame size {}x{}, configured {}x{}".format(*size, *configured)
            return None, wrong, "image"
        try:
            # GetArray copies the buffer (GetArrayZeroCopy would not), so releasing is safe.
            return to_image(result.GetArray(), self._format), None, "camera"
        except (ValueError, self._genicam.GenericException) as exc:
            return None, f"unusable buffer: {short_message(exc)}", "camera"

    def _check_removed(self) -> None:
        if self._removal is not None and self._removal.removed():
            raise CameraDisconnected(
                f"{self.name}: camera removed (detected by {self._removal.detected_by})"
            )


def _removal_handler(pylon: ModuleType, removal: RemovalMonitor) -> Any:
    """A pylon ConfigurationEventHandler that tells the monitor."""
    handler = _removal_handler_class(pylon)()
    handler.removal = removal
    return handler


@functools.cache
def _removal_handler_class(pylon: ModuleType) -> type:
    """The handler's class, made once: its base class exists only once pypylon is imported.
    The monitor is an attribute, not a closure: a class made at every open would hold the
    monitor, and through it the camera, in a reference cycle that only the garbage collector
    frees (and with the camera, its wait objects' pipes)."""

    class RemovalHandler(pylon.ConfigurationEventHandler):  # type: ignore[name-defined]
        removal: RemovalMonitor | None = None

        def OnCameraDeviceRemoved(self, camera: Any) -> None:
            if self.removal is not None:
                self.removal.on_removed()

    return RemovalHandler


def _block_id(result: Any) -> int | None:
    try:
        return int(result.GetBlockID())
    except Exception:  # not every transport reports one
        return None


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
