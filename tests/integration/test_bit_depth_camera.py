"""The same pixels give the same score from a file and from the camera (issue 9's field input 1):
an engine trained on 16-bit PNGs holding 12-bit values used to score its own test file 1.97 (OK)
with `partsight inspect` and the very same scene from the pylon camera emulation in Mono12 7138
(NOK) on the daemon, since files were divided by 65535 while camera frames were shifted up to 16
bits. The daemon runs in this process on the emulation, with no broker: its results wait in the
outbox, where the test reads them."""

from __future__ import annotations

import os

# Before pypylon is imported: its transport layer reads this once, when it initialises.
os.environ["PYLON_CAMEMU"] = "2"

import json
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import load_config
from edge.daemon import Daemon
from edge.inspector import Inspection, Inspector, inspect_files
from edge.mqtt import Outbox
from hw.camera.basler import BaslerCamera
from hw.camera.settings import BaslerSettings
from trainer.fit import FitResult
from trainer.station_files import emulated_camera, free_port, station_config, write_config

pylon: Any = pytest.importorskip(
    "pypylon.pylon", reason="pypylon is not installed (pip install pypylon)"
)

pytestmark = pytest.mark.integration

SERIAL = "0815-0000"


@pytest.fixture(scope="module", autouse=True)
def _emulation_present() -> None:
    serials = {d.GetSerialNumber() for d in pylon.TlFactory.GetInstance().EnumerateDevices()}
    if SERIAL not in serials:
        pytest.skip(f"pylon camera emulation not available; found {sorted(serials)}")


@pytest.fixture
def scene(tiny_dataset_12bit: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(the 12-bit test file, a folder holding the same scene for the emulation). The emulation
    takes a 16-bit image of the scene and delivers its top 12 bits in Mono12: exactly the file's
    values, MSB-aligned by the adapter."""
    path = sorted((tiny_dataset_12bit / "test" / "good").glob("*.png"))[0]
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    folder = tmp_path / "scene"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "part.png"), stored << 4)
    return path, folder


def from_file(inspector: Inspector, path: Path) -> Inspection:
    [(_, result)] = list(inspect_files(inspector, [path]))
    assert isinstance(result, Inspection) and result.score is not None
    return result


def test_a_mono12_frame_scores_what_its_file_scores(
    tiny_engine_12bit: FitResult, scene: tuple[Path, Path]
) -> None:
    path, folder = scene
    inspector = Inspector.open(tiny_engine_12bit.engine)
    want = from_file(inspector, path)
    camera = BaslerCamera(
        BaslerSettings(
            serial=SERIAL, roi=(0, 0, 64, 64), pixel_format="Mono12", emulation_image_dir=folder
        )
    )
    camera.open()
    try:
        grab = camera.grab(1.0)
    finally:
        camera.close()
    assert grab.ok and grab.image is not None and grab.bit_depth == 16
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(grab.image, stored << 4)  # the same pixels, on the full scale
    got = inspector.inspect(grab.image, "camera", grab.bit_depth)
    assert got.score == pytest.approx(want.score, rel=1e-6) and got.verdict == want.verdict == "OK"


def test_the_daemon_on_a_mono12_camera_scores_what_inspect_scores(
    tiny_engine_12bit: FitResult, scene: tuple[Path, Path], tmp_path: Path
) -> None:
    path, folder = scene
    want = from_file(Inspector.open(tiny_engine_12bit.engine), path)
    state = tmp_path / "state"
    data = station_config(
        state_dir=state,
        engine=tiny_engine_12bit.engine,
        camera=emulated_camera(folder, (64, 64), pixel_format="Mono12"),
        mqtt={"host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 0.5},  # nobody there
        pipeline={"deadline_ms": 2000, "trigger": {"rate_hz": 20.0}},
    )
    config = load_config(write_config(tmp_path / "partsight.toml", data))
    daemon = Daemon(config)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while daemon.counters.snapshot().parts < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon.request_stop("test")
    thread.join(20)
    assert codes == [0]
    with Outbox(config.mqtt.outbox) as outbox:
        rows = outbox.pending(1_000)
    results = [json.loads(m.payload) for m in rows if m.topic.endswith("/result")]
    assert len(results) >= 4
    for result in results:
        assert (result["verdict"], result["reason"]) == ("OK", "")
        assert result["score"] == pytest.approx(want.score, rel=1e-6)
