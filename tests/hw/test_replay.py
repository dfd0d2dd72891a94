"""The replay camera on real image files: order, pacing, looping, bad files, end of stream."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hw.camera.replay import ReplayCamera
from hw.camera.settings import ReplaySettings
from hw.errors import CameraConfigError, CameraDisconnected, CameraError, CameraTimeout, EndOfStream
from tests.huge_images import write_huge_png
from tests.hw.clocks import ManualClock


def _write(path: Path, value: int, shape: tuple[int, ...] = (12, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full(shape, value, dtype=np.uint8))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three images, in sub-folders and mixed formats, plus a file that is not an image."""
    root = tmp_path / "parts"
    _write(root / "a" / "001.png", 10)
    _write(root / "a" / "002.bmp", 20)
    _write(root / "b" / "003.tif", 30)
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def _values(camera: ReplayCamera, n: int) -> list[int]:
    out = []
    for _ in range(n):
        grab = camera.grab(1.0)
        assert grab.image is not None
        out.append(int(grab.image[0, 0]))
    return out


def test_plays_images_in_sorted_order_then_ends(folder: Path) -> None:
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None))
    camera.open()
    grabs = [camera.grab(1.0) for _ in range(3)]
    assert [int(g.image[0, 0]) for g in grabs if g.image is not None] == [10, 20, 30]
    assert [g.frame_counter for g in grabs] == [0, 1, 2]
    assert [Path(g.source or "").name for g in grabs] == ["001.png", "002.bmp", "003.tif"]
    assert all(g.ok and g.missed == 0 and g.time_source == "arrival" for g in grabs)
    with pytest.raises(EndOfStream, match="replay finished") as info:
        camera.grab(1.0)
    # A clean end: not an outage that a reconnecting wrapper would retry.
    assert isinstance(info.value, CameraError)
    assert not isinstance(info.value, CameraDisconnected)
    assert camera.stats.grabs == 3


def test_loops_with_a_counter_that_keeps_counting(folder: Path) -> None:
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None, loop=True))
    camera.open()
    assert _values(camera, 7) == [10, 20, 30, 10, 20, 30, 10]
    assert camera.grab(1.0).frame_counter == 7


def test_reopening_starts_from_the_first_image(folder: Path) -> None:
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None))
    camera.open()
    camera.open()  # idempotent
    assert _values(camera, 2) == [10, 20]
    camera.close()
    camera.close()
    assert not camera.connected
    with pytest.raises(CameraDisconnected):
        camera.grab(1.0)
    camera.open()
    assert _values(camera, 1) == [10]


def test_an_unreadable_image_is_a_grab_with_an_error(folder: Path) -> None:
    (folder / "a" / "0015.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None))
    camera.open()
    grabs = [camera.grab(1.0) for _ in range(4)]
    bad = grabs[1]
    assert bad.image is None and not bad.ok
    assert bad.error is not None and "0015.png" in bad.error
    assert bad.frame_counter == 1
    assert [g.ok for g in grabs] == [True, False, True, True]
    assert bad.fault == "camera"  # like a camera's failed buffer
    assert camera.stats.failed_buffers == 1


def test_a_folder_of_jpegs_replays_every_image_and_names_what_it_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Field input 2: a folder of three JPEGs used to replay one image (or none), silently."""
    for name, value in [("1.jpg", 40), ("2.JPG", 80), ("3.Jpeg", 120)]:
        _write(tmp_path / name, value)
    (tmp_path / "notes.txt").write_text("not an image")
    camera = ReplayCamera(ReplaySettings(folder=tmp_path, rate_hz=None))
    with caplog.at_level("INFO", logger="hw.camera.replay"):
        camera.open()
    assert f"replaying 3 images from {tmp_path}" in caplog.text
    assert f"skipping {tmp_path / 'notes.txt'}: not an image file (suffix '.txt')" in caplog.text
    values = [int(camera.grab(1.0).image[0, 0]) for _ in range(3)]  # type: ignore[index]
    assert [abs(v - want) <= 2 for v, want in zip(values, [40, 80, 120], strict=True)] == [True] * 3


def test_a_huge_image_is_refused_undecoded_as_the_image_s_fault_and_the_replay_goes_on(
    folder: Path,
) -> None:
    """Field input 5: the frame's size is read from its header; the part is NOK "image" (the
    camera worked), never an exception that stops the acquisition."""
    write_huge_png(folder / "a" / "0015.png", 40000, 30000)
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None))
    camera.open()
    grabs = [camera.grab(1.0) for _ in range(4)]
    huge = grabs[1]
    assert huge.image is None and huge.fault == "image"
    assert huge.error == (
        "unreadable image 0015.png: 1,200,000,000 pixels (40000 wide, 30000 high), more than "
        "the limit of 100,000,000; refused before decoding"
    )
    assert [g.ok for g in grabs] == [True, False, True, True]


def test_the_pixel_limit_is_a_setting(folder: Path) -> None:
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None, max_pixels=12 * 16 - 1))
    camera.open()
    grab = camera.grab(1.0)
    assert grab.fault == "image" and grab.error is not None and "limit of 191" in grab.error
    with pytest.raises(CameraConfigError, match="max_pixels"):
        ReplaySettings(folder=folder, max_pixels=0)


def test_a_broken_symbolic_link_is_a_failed_buffer_naming_it(folder: Path) -> None:
    link = folder / "a" / "0015.png"
    link.symlink_to(folder / "gone.png")
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=None))
    camera.open()
    bad = [camera.grab(1.0) for _ in range(2)][1]
    assert bad.error == (
        f"unreadable image 0015.png: broken symbolic link (its target {folder}/gone.png does not "
        "exist)"
    )
    assert bad.fault == "camera" and camera.stats.failed_buffers == 1


def test_replayed_frames_leave_their_bit_depth_to_the_engine(tmp_path: Path) -> None:
    """A 16-bit file may hold 12-bit values: only the engine knows what it was trained on."""
    cv2.imwrite(str(tmp_path / "a.png"), np.full((4, 4), 4095, np.uint16))
    camera = ReplayCamera(ReplaySettings(folder=tmp_path, rate_hz=None))
    camera.open()
    grab = camera.grab(1.0)
    assert grab.bit_depth is None and grab.image is not None and grab.image.max() == 4095


def test_images_come_out_in_partsight_layout(tmp_path: Path) -> None:
    deep = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 300
    bgra = np.zeros((12, 16, 4), dtype=np.uint8)
    bgra[..., 0], bgra[..., 3] = 200, 255
    cv2.imwrite(str(tmp_path / "1.png"), deep)
    cv2.imwrite(str(tmp_path / "2.png"), bgra)
    camera = ReplayCamera(ReplaySettings(folder=tmp_path, rate_hz=None))
    camera.open()
    first, second = camera.grab(1.0).image, camera.grab(1.0).image
    assert first is not None and first.dtype == np.uint16 and np.array_equal(first, deep)
    assert second is not None and second.shape == (12, 16, 3) and second[0, 0, 0] == 200


def test_paced_at_the_configured_rate(folder: Path) -> None:
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=50.0, loop=True))
    camera.open()
    stamps = [camera.grab(1.0).trigger_ns for _ in range(6)]
    intervals = np.diff(stamps) / 1e9
    # Never faster than the rate on the real clock (how much slower a loaded machine makes it
    # is no property of the camera; the exact schedule is checked on a hand-moved clock below).
    assert intervals.min() >= 0.015


def test_pacing_schedule_does_not_drift_or_burst(folder: Path) -> None:
    clock = ManualClock()
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=10.0, loop=True), clock=clock)
    camera.open()
    start = clock.now
    for _ in range(4):
        camera.grab(1.0)
        clock.advance(0.03)  # the consumer's own work between grabs
    assert clock.now - start == pytest.approx(0.3 + 0.03)  # frames at 0, .1, .2, .3
    clock.advance(1.0)  # a consumer far behind schedule...
    before = clock.now
    camera.grab(1.0)
    camera.grab(1.0)
    assert clock.now - before == pytest.approx(0.1)  # ...restarts it instead of bursting


def test_a_frame_not_due_within_the_timeout_is_a_timeout(folder: Path) -> None:
    camera = ReplayCamera(ReplaySettings(folder=folder, rate_hz=5.0))
    camera.open()
    camera.grab(1.0)
    started = time.monotonic()
    with pytest.raises(CameraTimeout):
        camera.grab(0.05)
    assert time.monotonic() - started < 0.4
    assert camera.stats.timeouts == 1
    assert camera.grab(1.0).ok  # the frame still comes when due


def test_a_missing_or_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CameraConfigError, match="folder"):
        ReplayCamera(ReplaySettings(folder=tmp_path / "nope")).open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraConfigError, match="no images"):
        ReplayCamera(ReplaySettings(folder=tmp_path / "empty")).open()


def test_settings_validate_the_rate(tmp_path: Path) -> None:
    with pytest.raises(CameraConfigError, match="rate_hz"):
        ReplaySettings(folder=tmp_path, rate_hz=0)
