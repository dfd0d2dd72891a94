"""The camera_line reject output against the pylon camera emulation (no hardware).

The emulation implements LineSelector/LineMode/LineSource and UserOutputSelector/UserOutputValue
(writable while grabbing) but not LineStatus, so the output is checked by reading
UserOutputValue back after every edge the scheduler drives.
"""

from __future__ import annotations

import os

os.environ["PYLON_CAMEMU"] = "2"  # before pypylon is imported

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hw.camera.basler import BaslerCamera
from hw.camera.settings import BaslerSettings
from hw.errors import OutputError
from hw.reject import RejectScheduler
from hw.reject.camera_line import CameraLineActuator

pylon: Any = pytest.importorskip("pypylon.pylon", reason="pypylon is not installed")

pytestmark = pytest.mark.integration
EMU_SERIAL = "0815-0000"


class ReadBack(CameraLineActuator):
    """Records (part id, value read back from the camera) after each edge."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.edges: list[tuple[int | None, bool, bool]] = []

    def set(self, on: bool, part_id: int | None = None) -> None:
        super().set(on, part_id)
        self.edges.append((part_id, on, self.value()))


@pytest.fixture
def camera() -> Iterator[BaslerCamera]:
    serials = {d.GetSerialNumber() for d in pylon.TlFactory.GetInstance().EnumerateDevices()}
    if EMU_SERIAL not in serials:
        pytest.skip(f"pylon camera emulation not available; found {sorted(serials)}")
    cam = BaslerCamera(BaslerSettings(serial=EMU_SERIAL, roi=(0, 0, 64, 48)))
    cam.open()
    yield cam
    cam.close()


def test_user_output_toggles_for_rejected_parts_while_grabbing(camera: BaslerCamera) -> None:
    act = ReadBack(lambda: camera.instant_camera, line=1, user_output=1)
    sched = RejectScheduler(act, delay_s=0.08, pulse_s=0.01, margin_s=0.01)
    sched.open()
    assert act.value() is False
    stop = threading.Event()
    grabbed = 0

    def grab() -> None:
        nonlocal grabbed
        while not stop.is_set():
            camera.grab(1.0)
            grabbed += 1

    grabber = threading.Thread(target=grab, daemon=True)
    grabber.start()
    n, bad = 30, {2, 3, 10, 17, 29}
    try:
        for i in range(n):
            t = time.monotonic_ns()
            sched.expect(i, t)
            sched.verdict(i, t, i in bad, "anomaly" if i in bad else "")
            time.sleep(0.03)
        time.sleep(0.2)
    finally:
        stop.set()
        grabber.join(5.0)
        sched.close()
    assert grabbed > 0
    ons = [(p, v) for p, on, v in act.edges if on and p is not None]
    offs = [(p, v) for p, on, v in act.edges if not on and p is not None]  # close: None
    assert sorted(p for p, _ in ons) == sorted(bad)
    assert all(v is True for _, v in ons)
    assert all(v is False for _, v in offs)
    assert len(offs) == len(bad)
    assert act.value() is False
    assert sched.counters.rejected == {"anomaly": len(bad)}


def test_closed_camera_is_output_error() -> None:
    act = CameraLineActuator(lambda: None)
    with pytest.raises(OutputError, match="not open"):
        act.open()
