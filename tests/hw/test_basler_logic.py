"""The Basler adapter's logic that needs no camera: settings, limits, pixel conversion,
frame-counter gaps, removal detection, and the error a missing pypylon gives.

Real device removal and real grabs run against the pylon camera emulation in
tests/integration/test_camera_pylon.py.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hw.camera.basler import BaslerCamera
from hw.camera.counter import GIGE_BLOCK_ID_MAX, GapCounter, frames_missed
from hw.camera.limits import check_float, check_int
from hw.camera.pixels import PIXEL_FORMATS, pixel_format, to_image
from hw.camera.removal import RemovalMonitor
from hw.camera.settings import BaslerSettings
from hw.errors import CameraConfigError

# -- frame-counter gaps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "missed"),
    [
        (None, 5, 0),  # first frame after open
        (5, None, 0),  # camera reports no counter
        (5, 6, 0),
        (5, 9, 3),
        (GIGE_BLOCK_ID_MAX, 1, 0),  # GigE 16-bit wrap: 0 is skipped
        (GIGE_BLOCK_ID_MAX - 1, 1, 1),  # 65535 lost
        (GIGE_BLOCK_ID_MAX, 4, 3),  # 1, 2, 3 lost
        (40_000, 3, 0),  # backwards, too far for a wrap: the counter restarted
        (7, 0, 0),  # acquisition restarted at 0
        (2**40, 2**40 + 2, 1),  # 64-bit counters
    ],
)
def test_frames_missed(previous: int | None, current: int | None, missed: int) -> None:
    assert frames_missed(previous, current) == missed


def test_gap_counter_follows_the_stream() -> None:
    gaps = GapCounter()
    assert [gaps.update(c) for c in (0, 1, 2, 5, 6, None, 8)] == [0, 0, 0, 2, 0, 0, 1]
    gaps.reset()
    assert gaps.update(0) == 0


# -- limits ----------------------------------------------------------------------------------


def test_check_int_names_the_setting_and_the_feature() -> None:
    check_int("roi", "Width", 640, 16, 4096, 8)
    with pytest.raises(CameraConfigError, match=r"roi: Width=642 .*increment of 8.*640 or 648"):
        check_int("roi", "Width", 642, 16, 4096, 8)
    with pytest.raises(CameraConfigError, match=r"roi: OffsetX=5000 is out of .*\[0, 3072\]"):
        check_int("roi", "OffsetX", 5000, 0, 3072, 2)
    # The grid starts at the minimum, not at zero.
    check_int("roi", "Height", 20, 4, 100, 4)
    with pytest.raises(CameraConfigError):
        check_int("roi", "Height", 22, 4, 100, 4)


def test_check_float() -> None:
    check_float("exposure_us", "ExposureTime", 100.0, 1.0, 1e7)
    with pytest.raises(CameraConfigError, match="exposure_us: ExposureTime=0.5"):
        check_float("exposure_us", "ExposureTime", 0.5, 1.0, 1e7)


# -- pixel formats ---------------------------------------------------------------------------


def test_mono8_and_mono16_pass_through() -> None:
    mono8 = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(to_image(mono8, pixel_format("Mono8")), mono8)
    mono16 = np.full((3, 4), 65535, np.uint16)
    assert np.array_equal(to_image(mono16, pixel_format("Mono16")), mono16)


@pytest.mark.parametrize(("name", "shift"), [("Mono10", 6), ("Mono12", 4), ("Mono12p", 4)])
def test_10_and_12_bit_are_msb_aligned(name: str, shift: int) -> None:
    raw = np.array([[0, 1, (1 << (16 - shift)) - 1]], dtype=np.uint16)
    out = to_image(raw, pixel_format(name))
    assert out.dtype == np.uint16
    assert out.tolist() == [[0, 1 << shift, 65535 - ((1 << shift) - 1)]]


def test_rgb_becomes_bgr_and_bgr_stays() -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255  # red
    bgr = to_image(rgb, pixel_format("RGB8"))
    assert bgr[0, 0].tolist() == [0, 0, 255] and bgr.flags.c_contiguous
    assert np.array_equal(to_image(bgr, pixel_format("BGR8")), bgr)


def test_a_buffer_that_does_not_match_the_format_is_refused() -> None:
    with pytest.raises(ValueError, match="Mono8"):
        to_image(np.zeros((2, 2), np.uint16), pixel_format("Mono8"))
    with pytest.raises(ValueError, match="BGR8"):
        to_image(np.zeros((2, 2), np.uint8), pixel_format("BGR8"))


def test_every_format_knows_its_camera_names() -> None:
    assert PIXEL_FORMATS["BGR8"].camera_names == ("BGR8", "BGR8Packed")
    assert all(f.camera_names[0] == name for name, f in PIXEL_FORMATS.items())


# -- removal detection -----------------------------------------------------------------------
# The pylon emulation fires both the event and the polled flag together, so the case polling
# exists for (an event that never came) is driven here with an injected checker.


def test_removal_seen_by_polling_when_the_event_never_fires() -> None:
    state = {"gone": False}
    monitor = RemovalMonitor(lambda: state["gone"])
    assert not monitor.removed()
    state["gone"] = True
    assert monitor.removed() and monitor.detected_by == "polling"


def test_removal_seen_by_the_event_without_polling_it() -> None:
    polls: list[int] = []

    def poll() -> bool:
        polls.append(1)
        return False

    monitor = RemovalMonitor(poll)
    monitor.on_removed()
    assert monitor.removed() and monitor.detected_by == "event"
    assert polls == []


def test_removal_latches_and_a_failing_poll_counts_as_removed() -> None:
    state = {"gone": True}
    monitor = RemovalMonitor(lambda: state["gone"])
    assert monitor.removed()
    state["gone"] = False  # a flag that flickers back must not revive the camera
    assert monitor.removed()

    def broken() -> bool:
        raise RuntimeError("SDK gone")

    assert RemovalMonitor(broken).removed()


# -- settings and the SDK --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"trigger": "line"}, "trigger"),
        ({"pixel_format": "BayerRG8"}, "pixel_format"),
        ({"roi": (0, 0, 0, 10)}, "roi"),
        ({"roi": (-1, 0, 10, 10)}, "roi"),
        ({"exposure_us": 0.0}, "exposure_us"),
        ({"grab_timeout_s": 0.0}, "grab_timeout_s"),
        ({"reconnect_min_s": 2.0, "reconnect_max_s": 1.0}, "reconnect_max_s"),
    ],
)
def test_basler_settings_name_the_bad_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(CameraConfigError, match=f"^{field}:"):
        BaslerSettings(**kwargs)  # type: ignore[arg-type]


def test_missing_pypylon_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pypylon", None)  # makes `import pypylon` fail
    camera = BaslerCamera(BaslerSettings())
    with pytest.raises(CameraConfigError, match="pip install pypylon"):
        camera.open()
    assert not camera.connected
