"""ReconnectingCamera: fast failures during an outage and the back-off between reopenings.

The inner camera here is scripted (the test switches its presence): no real camera can be
unplugged on demand on a test machine. The same wrapper is run against the pylon emulation's
real device removal in tests/integration/test_camera_pylon.py.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from hw.camera.reconnect import ReconnectingCamera
from hw.camera.stats import CameraStats
from hw.errors import CameraConfigError, CameraDisconnected, CameraError
from hw.frame import Grab
from hw.health import Health
from tests.hw.clocks import ManualClock


class SwitchableCamera:
    """A camera that is there or not, as the test says; records when it was asked to open."""

    def __init__(self, clock: ManualClock) -> None:
        self.name = "switchable"
        self.stats = CameraStats()
        self.clock = clock
        self.present = True
        self.refuse_with: CameraError | None = None  # what open() raises while absent
        self.is_open = False
        self.open_calls: list[float] = []

    @property
    def connected(self) -> bool:
        return self.is_open and self.present

    def health(self) -> Health:
        return Health(state="up" if self.connected else "down", since=self.clock.time())

    def open(self) -> None:
        self.open_calls.append(self.clock.now)
        if not self.present:
            raise self.refuse_with or CameraDisconnected("switchable: absent")
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def grab(self, timeout_s: float) -> Grab:
        if not (self.is_open and self.present):
            raise CameraDisconnected("switchable: gone")
        return Grab(
            image=np.zeros((2, 2), np.uint8), trigger_ns=self.clock.monotonic_ns(),
            wall_time=self.clock.time(), time_source="trigger", frame_counter=None,
            exposure_us=None, gain_db=None,
        )  # fmt: skip


def _attempt_times(
    camera: ReconnectingCamera, inner: SwitchableCamera, clock: ManualClock, until: float
) -> list[float]:
    """Grab every 0.25 s (exact in binary) until `until`, returning when opens were tried."""
    start = len(inner.open_calls)
    while clock.now < until:
        clock.advance(0.25)
        with contextlib.suppress(CameraDisconnected):
            camera.grab(0.1)
    return inner.open_calls[start:]


def test_back_off_doubles_to_the_cap_then_resets() -> None:
    clock = ManualClock(start=0.0)
    inner = SwitchableCamera(clock)
    camera = ReconnectingCamera(inner, min_delay_s=0.5, max_delay_s=4.0, clock=clock)
    camera.open()
    assert camera.grab(0.1).ok and camera.connected

    inner.present = False
    with pytest.raises(CameraDisconnected):
        camera.grab(0.1)  # the loss, at t=0
    assert not camera.connected and camera.health().retry_in_s == pytest.approx(0.5)
    assert camera.stats.disconnects == 1

    attempts = _attempt_times(camera, inner, clock, until=20.0)
    assert attempts == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]  # +0.5, +1, +2, then +4 (cap)
    assert camera.stats.reconnect_failures == 7

    inner.present = True
    assert _attempt_times(camera, inner, clock, until=23.5) == [23.5]
    assert camera.connected and camera.stats.reconnects == 1
    assert camera.grab(0.1).ok

    inner.present = False  # a new outage starts again from the shortest delay
    with pytest.raises(CameraDisconnected):
        camera.grab(0.1)
    assert _attempt_times(camera, inner, clock, until=25.0) == [24.0, 25.0]


def test_grabs_during_an_outage_fail_fast_without_waiting_or_reopening() -> None:
    clock = ManualClock(start=0.0)
    inner = SwitchableCamera(clock)
    camera = ReconnectingCamera(inner, min_delay_s=5.0, max_delay_s=60.0, clock=clock)
    camera.open()
    inner.present = False
    with pytest.raises(CameraDisconnected):
        camera.grab(1.0)
    for _ in range(100):
        with pytest.raises(CameraDisconnected, match="next reconnection attempt"):
            camera.grab(1.0)
    assert clock.now == 0.0 and clock.slept == []  # no time spent
    assert inner.open_calls == [0.0]  # only the first open


def test_a_camera_absent_at_start_does_not_stop_the_start() -> None:
    clock = ManualClock(start=0.0)
    inner = SwitchableCamera(clock)
    inner.present = False
    camera = ReconnectingCamera(inner, min_delay_s=1.0, max_delay_s=8.0, clock=clock)
    camera.open()  # no exception: the daemon starts in an outage
    assert not camera.connected and camera.stats.disconnects == 1
    with pytest.raises(CameraDisconnected):
        camera.grab(0.1)
    inner.present = True
    clock.advance(1.0)
    assert camera.grab(0.1).ok and camera.stats.reconnects == 1


def test_bad_settings_at_start_still_fail_the_start() -> None:
    clock = ManualClock()
    inner = SwitchableCamera(clock)
    inner.present = False
    inner.refuse_with = CameraConfigError("roi: Width=5000 is out of the camera's range")
    with pytest.raises(CameraConfigError):
        ReconnectingCamera(inner, clock=clock).open()


def test_a_replacement_camera_that_refuses_the_settings_keeps_the_outage_going() -> None:
    clock = ManualClock(start=0.0)
    inner = SwitchableCamera(clock)
    camera = ReconnectingCamera(inner, min_delay_s=1.0, max_delay_s=8.0, clock=clock)
    camera.open()
    inner.present = False
    inner.refuse_with = CameraConfigError("pixel_format: this camera does not offer Mono12")
    with pytest.raises(CameraDisconnected):
        camera.grab(0.1)
    clock.advance(1.0)
    with pytest.raises(CameraDisconnected, match="Mono12") as info:
        camera.grab(0.1)
    assert isinstance(info.value.__cause__, CameraConfigError)
    assert camera.health().retry_in_s == pytest.approx(2.0)


def test_closed_means_closed() -> None:
    clock = ManualClock()
    inner = SwitchableCamera(clock)
    camera = ReconnectingCamera(inner, clock=clock)
    with pytest.raises(CameraDisconnected, match="not open"):
        camera.grab(0.1)
    camera.open()
    camera.close()
    camera.close()
    assert not inner.is_open and not camera.connected
    with pytest.raises(ValueError):
        ReconnectingCamera(inner, min_delay_s=2.0, max_delay_s=1.0)
