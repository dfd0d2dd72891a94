"""The Basler adapter against real pypylon and the pylon camera emulation (no hardware).

The emulation gives two cameras (serials 0815-0000 and 0815-0001) and a few features real
cameras lack, used here: ImageFilename/ImageFileMode/TestImageSelector (replay a folder of
images), ForceFailedBufferCount + ForceFailedBuffer (deliver failed buffers), and
FirePnPCallback (simulate unplugging: the removal event fires and IsCameraDeviceRemoved()
turns true). It never drops a frame by itself, so a frame-counter gap is made by taking frames
out of the stream behind the adapter's back, which is what host-side frame loss looks like to
it. The case where the removal event does not fire at all (polling only) cannot be produced
here; tests/hw/test_basler_logic.py drives it with an injected checker.
"""

from __future__ import annotations

import os

# Before pypylon is imported: its transport layer reads this once, when it initialises.
os.environ["PYLON_CAMEMU"] = "2"

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from hw.camera import create_camera
from hw.camera.basler import BaslerCamera
from hw.camera.reconnect import ReconnectingCamera
from hw.camera.settings import BaslerSettings
from hw.errors import CameraConfigError, CameraDisconnected, CameraTimeout

pylon: Any = pytest.importorskip(
    "pypylon.pylon", reason="pypylon is not installed (pip install pypylon)"
)

pytestmark = pytest.mark.integration

EMU_SERIAL = "0815-0000"
OTHER_SERIAL = "0815-0001"
SIZE = (48, 64)  # (H, W): small frames keep the emulation fast


@pytest.fixture(scope="module", autouse=True)
def _emulation_present() -> None:
    serials = {d.GetSerialNumber() for d in pylon.TlFactory.GetInstance().EnumerateDevices()}
    if not {EMU_SERIAL, OTHER_SERIAL} <= serials:
        pytest.skip(
            "pylon camera emulation not available (pypylon was imported before PYLON_CAMEMU "
            f"was set?); found {sorted(serials)}"
        )


def _settings(**overrides: Any) -> BaslerSettings:
    values: dict[str, Any] = {"serial": EMU_SERIAL, "roi": (0, 0, SIZE[1], SIZE[0])}
    values.update(overrides)
    return BaslerSettings(**values)


@pytest.fixture
def open_camera() -> Iterator[Any]:
    """Opens BaslerCameras with the given settings and closes them after the test."""
    cameras: list[BaslerCamera] = []

    def make(**overrides: Any) -> BaslerCamera:
        camera = BaslerCamera(_settings(**overrides))
        cameras.append(camera)
        camera.open()
        return camera

    yield make
    for camera in cameras:
        camera.close()


def _node(camera: BaslerCamera, name: str) -> Any:
    return camera.instant_camera.GetNodeMap().GetNode(name)


@pytest.mark.parametrize(
    ("fmt", "dtype", "shape"),
    [
        ("Mono8", np.uint8, SIZE),
        ("Mono12", np.uint16, SIZE),
        ("BGR8", np.uint8, (*SIZE, 3)),
        ("RGB8", np.uint8, (*SIZE, 3)),
    ],
)
def test_software_trigger_grabs_the_configured_size_and_format(
    open_camera: Any, fmt: str, dtype: type, shape: tuple[int, ...]
) -> None:
    camera = open_camera(pixel_format=fmt, exposure_us=500.0, gain_db=3.0)
    camera.open()  # idempotent
    grabs = [camera.grab(1.0) for _ in range(3)]
    for grab in grabs:
        assert grab.ok and grab.image is not None
        assert grab.image.shape == shape and grab.image.dtype == dtype
        assert grab.time_source == "trigger"
        assert grab.exposure_us == pytest.approx(500.0, rel=0.01)
        assert grab.gain_db == pytest.approx(3.0, abs=0.1)
    assert [g.frame_counter for g in grabs] == [0, 1, 2]
    assert [g.missed for g in grabs] == [0, 0, 0]
    assert grabs[0].trigger_ns < grabs[1].trigger_ns < grabs[2].trigger_ns
    if fmt == "Mono12":  # MSB-aligned into 16 bits
        assert grabs[0].image is not None and not np.any(grabs[0].image % 16)
    assert camera.connected and camera.stats.grabs == 3


def test_emulation_replays_a_folder_of_pngs(open_camera: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, SIZE, dtype=np.uint8) for _ in range(3)]
    for i, image in enumerate(images):
        cv2.imwrite(str(tmp_path / f"part{i}.png"), image)
    camera = open_camera(emulation_image_dir=tmp_path)
    for expected in [*images, images[0]]:
        grab = camera.grab(1.0)
        assert grab.image is not None and np.array_equal(grab.image, expected)


@pytest.mark.parametrize("fmt", ["BGR8", "RGB8"])
def test_colour_frames_come_out_bgr(open_camera: Any, tmp_path: Path, fmt: str) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "colour.png"), image)
    camera = open_camera(pixel_format=fmt, emulation_image_dir=tmp_path)
    grab = camera.grab(1.0)
    assert grab.image is not None and np.array_equal(grab.image, image)


def test_failed_buffers_become_grab_errors_and_grabbing_goes_on(open_camera: Any) -> None:
    camera = open_camera()
    assert camera.grab(1.0).ok
    _node(camera, "ForceFailedBufferCount").SetValue(2)
    _node(camera, "ForceFailedBuffer").Execute()
    failed = [camera.grab(1.0) for _ in range(2)]
    for grab in failed:
        assert grab.image is None and not grab.ok
        assert grab.error is not None and grab.error.startswith("incomplete buffer (error 0x")
    assert [g.frame_counter for g in failed] == [1, 2]
    assert all(camera.grab(1.0).ok for _ in range(2))
    assert camera.stats.failed_buffers == 2 and camera.stats.grabs == 5


def test_an_image_the_emulation_cannot_load_is_a_failed_buffer_with_its_code(
    open_camera: Any, tmp_path: Path
) -> None:
    (tmp_path / "part.png").write_bytes(b"not a png")
    camera = open_camera(emulation_image_dir=tmp_path / "part.png")
    grab = camera.grab(1.0)
    assert grab.image is None
    assert grab.error is not None and "error 0x7" in grab.error and "part.png" in grab.error
    assert camera.connected and camera.stats.failed_buffers == 1


def test_a_frame_counter_gap_is_reported_as_missed(open_camera: Any) -> None:
    camera = open_camera()
    assert camera.grab(1.0).frame_counter == 0
    raw = camera.instant_camera
    for _ in range(2):  # two frames that never reach the adapter
        raw.WaitForFrameTriggerReady(1000, pylon.TimeoutHandling_ThrowException)
        raw.ExecuteSoftwareTrigger()
        raw.RetrieveResult(1000, pylon.TimeoutHandling_ThrowException).Release()
    grab = camera.grab(1.0)
    assert grab.ok and grab.frame_counter == 3 and grab.missed == 2
    assert camera.stats.missed_frames == 2
    assert camera.grab(1.0).missed == 0


def test_a_late_frame_is_dropped_not_paired_with_the_next_trigger(open_camera: Any) -> None:
    camera = open_camera()
    camera.grab(1.0)
    raw = camera.instant_camera
    raw.WaitForFrameTriggerReady(1000, pylon.TimeoutHandling_ThrowException)
    raw.ExecuteSoftwareTrigger()  # its frame arrives with nobody waiting for it
    time.sleep(0.1)
    grab = camera.grab(1.0)
    assert grab.frame_counter == 2 and grab.missed == 0
    assert camera.stats.stale_frames == 1


def test_roi_sets_size_and_offsets(open_camera: Any) -> None:
    camera = open_camera(roi=(16, 8, 32, 24))
    grab = camera.grab(1.0)
    assert grab.image is not None and grab.image.shape == (24, 32)
    assert (_node(camera, "OffsetX").GetValue(), _node(camera, "OffsetY").GetValue()) == (16, 8)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"roi": (0, 0, 5000, 48)}, r"^roi: Width=5000 is out of the camera's range"),
        ({"roi": (4090, 0, 64, 48)}, r"^roi: OffsetX=4090 is out of the camera's range"),
        ({"exposure_us": 0.5}, r"^exposure_us: ExposureTime=0.5"),
        ({"gain_db": 100.0}, r"^gain_db: Gain=100"),
        ({"trigger": "hardware", "trigger_line": "Line9"}, r"^trigger_line: TriggerSource='Line9'"),
        ({"pixel_format": "Mono10p"}, r"^pixel_format: this camera does not offer Mono10p"),
        ({"emulation_image_dir": Path("/no/such/dir")}, r"^emulation_image_dir: .* not exist"),
    ],
)
def test_settings_the_camera_refuses(overrides: dict[str, Any], message: str) -> None:
    camera = BaslerCamera(_settings(**overrides))
    with pytest.raises(CameraConfigError, match=message):
        camera.open()
    assert not camera.connected and camera.instant_camera is None  # left closed


def test_hardware_trigger_without_a_trigger_times_out(open_camera: Any) -> None:
    camera = open_camera(trigger="hardware", trigger_line="Line1")
    started = time.monotonic()
    with pytest.raises(CameraTimeout):
        camera.grab(0.2)
    assert 0.15 < time.monotonic() - started < 1.0
    assert camera.connected and camera.stats.timeouts == 1
    assert _node(camera, "TriggerSource").GetValue() == "Line1"


def test_the_camera_is_picked_by_serial(open_camera: Any) -> None:
    camera = open_camera(serial=OTHER_SERIAL)
    assert camera.instant_camera.GetDeviceInfo().GetSerialNumber() == OTHER_SERIAL
    assert camera.grab(1.0).ok
    absent = BaslerCamera(_settings(serial="12345678"))
    with pytest.raises(CameraDisconnected, match=f"serial 12345678.*{EMU_SERIAL}"):
        absent.open()


def test_removal_is_detected_and_reported_as_disconnected(open_camera: Any) -> None:
    camera = open_camera()
    assert camera.grab(1.0).ok
    _node(camera, "FirePnPCallback").Execute()  # the emulation's "unplug"
    with pytest.raises(CameraDisconnected, match="camera removed"):
        camera.grab(1.0)
    assert not camera.connected
    camera.close()
    camera.close()


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd (Linux)")
def test_closing_a_camera_releases_everything_it_opened() -> None:
    """Each open and close (a reconnect does both) once leaked ~32 pipes, held by a reference
    cycle through the removal handler; after ~30 reconnects a process ran out of select()-able
    file descriptors."""
    camera = BaslerCamera(_settings())
    camera.open()
    camera.close()  # the first open loads pylon's transport layers for good
    before = _open_files()
    for _ in range(3):
        camera = BaslerCamera(_settings())
        camera.open()
        camera.close()
    assert _open_files() - before <= 2


def test_reconnecting_camera_rides_out_a_removal() -> None:
    camera = create_camera(_settings(reconnect_min_s=0.05, reconnect_max_s=0.2))
    assert isinstance(camera, ReconnectingCamera) and isinstance(camera.camera, BaslerCamera)
    camera.open()
    try:
        assert camera.grab(1.0).ok
        camera.camera.instant_camera.GetNodeMap().GetNode("FirePnPCallback").Execute()
        with pytest.raises(CameraDisconnected):
            camera.grab(1.0)
        started = time.monotonic()
        with pytest.raises(CameraDisconnected, match="next reconnection attempt"):
            camera.grab(1.0)
        assert time.monotonic() - started < 0.05  # fast, while the back-off runs
        time.sleep(0.06)
        grab = camera.grab(1.0)  # reopened inside this grab
        assert grab.ok and grab.frame_counter == 0
        assert camera.connected
        assert (camera.stats.disconnects, camera.stats.reconnects) == (1, 1)
    finally:
        camera.close()
