"""The daemon's pipeline end to end, in-process: the shipped replay camera, the tiny engine on
ONNX Runtime, and a real MQTT publisher whose broker is absent, so every result stays in the
disk-backed outbox where the test reads it (the broker side is tests/integration/test_daemon.py).

Where a test needs an engine that is slow, stuck or failing, it wraps the real inspector
(`Slow`, `Failing`): no real engine can be made to fail on cue.
"""

from __future__ import annotations

import collections
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.bundle import sha256_file
from edge.config import Config, check_config_main, load_config
from edge.daemon import Daemon
from edge.daemon.main import run_main
from edge.errors import BundleError, InferenceError
from edge.inspector import Inspector
from edge.mqtt import RESULT_SCHEMA_PATH, MqttPublisher, Outbox
from tests.conftest import TINY_DEFECT, TINY_NUISANCE
from tests.huge_images import write_huge_png
from tests.mqtt_config import mqtt_config, station
from trainer.fit import FitResult
from trainer.station_files import emulated_camera, free_port, station_config, write_config

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")

SITE, LINE, STATION = "demo", "line-1", "station-1"


# -- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inspector(tiny_engine: FitResult) -> Inspector:
    return Inspector.open(tiny_engine.engine)


@pytest.fixture(scope="module")
def validator() -> Any:
    return jsonschema.Draft202012Validator(json.loads(RESULT_SCHEMA_PATH.read_text()))


def frames_from(dataset: Path, folder: Path, count: int) -> list[Path]:
    """`count` of the dataset's test images, copied as 000.png, 001.png, ... (replay order)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((dataset / "test").rglob("*.png"))
    out = []
    for i in range(count):
        target = folder / f"{i:03d}.png"
        shutil.copy(sources[i % len(sources)], target)
        out.append(target)
    return out


def config(
    tmp_path: Path,
    engine: Path,
    frames: Path,
    *,
    camera: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
    state: str = "state",
) -> Config:
    data = station_config(
        state_dir=tmp_path / state,
        engine=engine,
        camera={"kind": "replay", "folder": str(frames), "free_run": True, **(camera or {})},
        pipeline={"deadline_ms": 2000, **(pipeline or {})},
    )
    return load_config(write_config(tmp_path / "partsight.toml", data))


class Results:
    """A real publisher with no broker to reach: results wait in its outbox, read back here."""

    def __init__(self, path: Path) -> None:
        self.outbox = Outbox(path)
        config = mqtt_config(
            "127.0.0.1",
            free_port(),  # nothing listens there
            reconnect_min_s=5.0,
            reconnect_max_s=5.0,
            connect_timeout_s=0.5,
        )
        self.publisher = MqttPublisher(config, station(SITE, LINE, STATION), self.outbox)

    def payloads(self) -> list[dict[str, Any]]:
        rows = self.outbox.pending(1_000_000)
        return [json.loads(m.payload) for m in rows if m.topic.endswith("/result")]


@pytest.fixture
def results(tmp_path: Path) -> Iterator[Results]:
    found = Results(tmp_path / "outbox.sqlite")
    yield found
    found.outbox.close()


def run(daemon: Daemon, stop_after_s: float | None = None, limit_s: float = 30.0) -> int:
    """run_forever() in a thread (no signals there); stopped by the end of the replay, or by
    request_stop() after `stop_after_s`."""
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()))
    thread.start()
    if stop_after_s is not None:
        time.sleep(stop_after_s)
        daemon.request_stop("test")
    thread.join(limit_s)
    assert not thread.is_alive(), "the daemon did not stop"
    return codes[0]


def check_one_verdict_each_in_order(payloads: list[dict[str, Any]], validator: Any) -> None:
    ids = [p["part_id"] for p in payloads]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "a part id is missing or out of order"
    for payload in payloads:
        validator.validate(payload)


class Slow:
    """The real inspector, made slow (or stuck until `release`) for the parts `which` picks."""

    def __init__(
        self,
        inner: Inspector,
        delay_s: float = 0.0,
        which: Callable[[int], bool] = lambda n: True,
        block: threading.Event | None = None,
    ) -> None:
        self.inner, self.bundle, self.threshold = inner, inner.bundle, inner.threshold
        self.backend = inner.backend
        self.delay_s, self.which, self.block = delay_s, which, block
        self.calls = 0
        self.blocking = threading.Event()  # set once a part is held at `block`

    def inspect(
        self, image: np.ndarray, source: str = "frame", bit_depth: int | None = None
    ) -> Any:
        self.calls += 1
        if self.which(self.calls):
            if self.block is not None:
                self.blocking.set()
                self.block.wait(10.0)
            time.sleep(self.delay_s)
        return self.inner.inspect(image, source, bit_depth)


class Failing:
    """The real inspector, failing with `error` on the parts `which` picks."""

    def __init__(self, inner: Inspector, error: Exception, which: Callable[[int], bool]) -> None:
        self.inner, self.bundle, self.threshold = inner, inner.bundle, inner.threshold
        self.backend = inner.backend
        self.error, self.which = error, which
        self.calls = 0

    def inspect(
        self, image: np.ndarray, source: str = "frame", bit_depth: int | None = None
    ) -> Any:
        self.calls += 1
        if self.which(self.calls):
            raise self.error
        return self.inner.inspect(image, source, bit_depth)


# -- tests ---------------------------------------------------------------------------------------


def test_every_frame_gets_exactly_one_verdict_in_part_order(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 30)
    cfg = config(tmp_path, tiny_engine.engine, tmp_path / "frames")
    daemon = Daemon(cfg, inspector=inspector, publisher=results.publisher)
    assert run(daemon) == 0  # the end of the replay is a clean stop
    payloads = results.payloads()
    assert len(payloads) == 30
    check_one_verdict_each_in_order(payloads, validator)
    assert payloads[0]["part_id"] == 1
    for p in payloads:
        assert p["verdict"] in ("OK", "NOK") and p["score"] is not None
        assert p["engine"] == {
            "name": "tiny",
            "version": inspector.bundle.manifest.version,
            "model_sha256": sha256_file(inspector.bundle.path("model.onnx")),
        }
        assert {"grab", "queue", "inference", "inspect", "total"} <= set(p["latency_ms"])
        assert p["camera"] is None  # a replay has no exposure or gain to report
    snap = daemon.counters.snapshot()
    assert snap.parts == 30 and snap.overload == 0 and snap.late_verdicts == 0
    assert snap.verdicts["OK"] + snap.verdicts["NOK"] == 30
    json.dumps(daemon.metrics())  # the metrics payload is JSON
    assert "30 parts" in daemon.status()


def test_frames_the_engine_cannot_take_are_rejected_with_their_reason(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    folder = tmp_path / "frames"
    frames_from(tiny_dataset, folder, 6)
    cv2.imwrite(str(folder / "001.png"), np.zeros((32, 48), np.uint8))  # wrong size
    (folder / "003.png").write_bytes(b"not a png")  # the camera cannot deliver it
    cv2.imwrite(str(folder / "004.png"), np.zeros((64, 64, 3), np.uint8))  # colour, not mono
    daemon = Daemon(
        config(tmp_path, tiny_engine.engine, folder),
        inspector=inspector,
        publisher=results.publisher,
    )
    assert run(daemon) == 0
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    got = [(p["verdict"], p["reason"]) for p in payloads]
    assert got[1] == ("NOK", "image") and got[4] == ("NOK", "image")
    assert got[3] == ("ERROR", "camera")
    assert payloads[3]["engine"] is None and payloads[3]["score"] is None
    assert all(v in ("OK", "NOK") and r in ("", "anomaly") for v, r in (got[0], got[2], got[5]))
    assert daemon.counters.snapshot().reasons == {
        "image": 2,
        "camera": 1,
        **({"anomaly": n} if (n := sum(r == "anomaly" for _, r in got)) else {}),
    }


def test_a_huge_frame_is_an_image_nok_and_the_daemon_judges_the_rest(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Field input 5: a 40000x30000 PNG used to stop the acquisition worker and the daemon.
    Its size is read from the header; the part is NOK "image"; every other part is judged."""
    folder = tmp_path / "frames"
    frames_from(tiny_dataset, folder, 4)
    huge = write_huge_png(folder / "001.png", 40000, 30000)
    daemon = Daemon(
        config(tmp_path, tiny_engine.engine, folder),
        inspector=inspector,
        publisher=results.publisher,
    )
    with caplog.at_level("WARNING", logger="hw.camera.replay"):
        assert run(daemon) == 0  # the end of the replay, not a fatal error
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    assert len(payloads) == 4 and daemon.fatal is None
    assert (payloads[1]["verdict"], payloads[1]["reason"], payloads[1]["score"]) == (
        "NOK",
        "image",
        None,
    )
    assert all(p["score"] is not None for i, p in enumerate(payloads) if i != 1)
    assert (
        f"replay:frames: {huge}: 1,200,000,000 pixels (40000 wide, 30000 high), more than the "
        "limit of 100,000,000; refused before decoding"
    ) in caplog.messages


def test_a_full_pipeline_rejects_parts_as_overload_never_silently(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 40)
    cfg = config(
        tmp_path,
        tiny_engine.engine,
        tmp_path / "frames",
        camera={"free_run": False, "rate_hz": 200.0},  # the camera sets the pace
        pipeline={"frame_queue": 1},
    )
    daemon = Daemon(cfg, inspector=Slow(inspector, 0.03), publisher=results.publisher)
    assert run(daemon) == 0
    payloads = results.payloads()
    assert len(payloads) == 40
    check_one_verdict_each_in_order(payloads, validator)
    overload = [p for p in payloads if p["reason"] == "overload"]
    assert len(overload) >= 10
    assert all(p["verdict"] == "NOK" and p["score"] is None for p in overload)
    assert daemon.counters.snapshot().overload == len(overload)
    assert daemon.acquisition is not None and daemon.acquisition.overloaded == len(overload)


def test_a_verdict_is_never_passed_late(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 8)
    cfg = config(tmp_path, tiny_engine.engine, tmp_path / "frames", pipeline={"deadline_ms": 60})
    slow = Slow(inspector, 0.1, which=lambda n: n in (2, 5))
    daemon = Daemon(cfg, inspector=slow, publisher=results.publisher)
    assert run(daemon) == 0
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    assert len(payloads) == 8
    timeouts = [p for p in payloads if p["reason"] == "timeout"]
    assert timeouts, "the slow parts missed their deadline"
    assert all(p["verdict"] == "NOK" and p["latency_ms"]["total"] >= 60 for p in timeouts)
    on_time = [p for p in payloads if p["reason"] != "timeout"]
    assert on_time and all(p["latency_ms"]["total"] <= 60 for p in on_time)


def test_a_stuck_engine_still_gets_every_part_its_verdict_by_the_deadline(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 10)
    cfg = config(tmp_path, tiny_engine.engine, tmp_path / "frames", pipeline={"deadline_ms": 150})
    release = threading.Event()
    stuck = Slow(inspector, which=lambda n: n == 1, block=release)
    daemon = Daemon(cfg, inspector=stuck, publisher=results.publisher)
    # Held 0.6 s from the moment the engine really is stuck, however slow start-up is.
    threading.Thread(
        target=lambda: (stuck.blocking.wait(10.0), time.sleep(0.6), release.set()), daemon=True
    ).start()
    assert run(daemon) == 0
    payloads = results.payloads()
    assert len(payloads) == 10
    check_one_verdict_each_in_order(payloads, validator)
    first = payloads[0]
    assert (first["verdict"], first["reason"]) == ("NOK", "timeout")
    # Decided by the output stage at the deadline, while the engine was still stuck.
    assert 150 <= first["latency_ms"]["total"] < 1000
    assert daemon.counters.snapshot().late_verdicts >= 1  # the engine's answer came too late


def test_an_inference_failure_is_an_error_verdict_and_the_daemon_goes_on(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 9)
    failing = Failing(inspector, InferenceError("backend exploded"), which=lambda n: n % 3 == 0)
    cfg = config(tmp_path, tiny_engine.engine, tmp_path / "frames")
    daemon = Daemon(cfg, inspector=failing, publisher=results.publisher)
    assert run(daemon) == 0
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    errors = [p["part_id"] for p in payloads if p["verdict"] == "ERROR"]
    assert errors == [3, 6, 9]
    assert all(payloads[i - 1]["reason"] == "inference" for i in errors)


def test_a_worker_failure_is_fatal_exit_1_and_parts_in_flight_still_get_verdicts(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 20)
    cfg = config(tmp_path, tiny_engine.engine, tmp_path / "frames", pipeline={"deadline_ms": 200})
    broken = Failing(inspector, RuntimeError("a bug"), which=lambda n: n == 3)
    daemon = Daemon(cfg, inspector=broken, publisher=results.publisher)
    assert run(daemon) == 1
    assert daemon.fatal is not None and "a bug" in daemon.fatal
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    assert payloads[2]["reason"] == "timeout"  # the part the inspection died on
    assert all(p["reason"] == "timeout" for p in payloads[2:])


def test_stopping_finishes_the_parts_in_flight(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    inspector: Inspector,
    results: Results,
    validator: Any,
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 10)
    cfg = config(
        tmp_path,
        tiny_engine.engine,
        tmp_path / "frames",
        camera={"free_run": False, "rate_hz": 50.0, "loop": True},
    )
    daemon = Daemon(cfg, inspector=inspector, publisher=results.publisher)
    started = time.monotonic()
    assert run(daemon, stop_after_s=1.0) == 0
    assert time.monotonic() - started < 4.0
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    assert daemon.acquisition is not None
    assert len(payloads) == daemon.acquisition.parts >= 20  # every part handed out got one
    assert all(p["reason"] not in ("timeout", "overload") for p in payloads)
    assert len(daemon.in_flight) == 0


def test_part_ids_continue_across_restarts(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path, inspector: Inspector
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 3)
    cfg = config(tmp_path, tiny_engine.engine, tmp_path / "frames")
    runs = []
    for n in range(2):
        found = Results(tmp_path / f"outbox{n}.sqlite")
        assert run(Daemon(cfg, inspector=inspector, publisher=found.publisher)) == 0
        runs.append([p["part_id"] for p in found.payloads()])
        found.outbox.close()
    assert runs[0] == [1, 2, 3]
    assert len(runs[1]) == 3 and runs[1][0] > runs[0][-1]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """run_main() sets up the root logger as the daemon would; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_run_main_exit_codes(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path, capsys: Any
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 3)
    good = config(tmp_path, tiny_engine.engine, tmp_path / "frames")
    del good
    assert run_main(tmp_path / "partsight.toml") == 0

    (tmp_path / "bad.toml").write_text("[station]\nsite = 1\n")
    assert run_main(tmp_path / "bad.toml") == 2
    assert "bad.toml" in capsys.readouterr().err

    empty = tmp_path / "empty"
    empty.mkdir()
    config(tmp_path, tiny_engine.engine, empty)
    assert run_main(tmp_path / "partsight.toml") == 2
    said = said_on_stderr(capsys)
    assert len(said) == 1 and "no images" in said[0]

    broken = tmp_path / "broken-engine"
    shutil.copytree(tiny_engine.engine, broken)
    model = next(broken.glob("*.onnx"))
    model.write_bytes(model.read_bytes()[:-10])  # its hash no longer checks out
    config(tmp_path, broken, tmp_path / "frames")
    assert run_main(tmp_path / "partsight.toml") == 2
    said = said_on_stderr(capsys)
    assert len(said) == 1 and "model.onnx" in said[0]


def said_on_stderr(capsys: Any) -> list[str]:
    """The daemon's own start-up error lines (the rest of stderr is its log)."""
    err: str = capsys.readouterr().err
    return [line for line in err.splitlines() if line.startswith("partsight: cannot start:")]


def test_nuisances_are_passed_counted_and_published_with_their_class(
    tmp_path: Path,
    tiny_classified: tuple[Path, str],
    tiny_test_set: Path,
    results: Results,
    validator: Any,
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    kinds = [TINY_NUISANCE] * 3 + [TINY_DEFECT] * 3
    for i, kind in enumerate(kinds):
        shutil.copy(tiny_test_set / "test" / kind / f"{i % 3:03d}.png", frames / f"{i:03d}.png")
    cfg = config(tmp_path, tiny_classified[0], frames)
    daemon = Daemon(cfg, publisher=results.publisher)  # the engine is opened from the config
    assert run(daemon) == 0
    payloads = results.payloads()
    check_one_verdict_each_in_order(payloads, validator)
    said = [(p["verdict"], p["reason"], p["class"]) for p in payloads]
    assert said[:3] == [("OK", "nuisance", "nuisance")] * 3
    # A defect is rejected by the MLP ("anomaly") or, far beyond every labelled nuisance, by
    # the out-of-distribution guard ("ood"); either way NOK, class defect.
    assert all(v == "NOK" and r in ("anomaly", "ood") and c == "defect" for v, r, c in said[3:])
    assert all(0.9 <= p["class_probability"] <= 1.0 for p in payloads[:3])
    assert all("classify" in p["latency_ms"] for p in payloads)
    snapshot = daemon.counters.snapshot()
    assert snapshot.passed == {"nuisance": 3}
    assert snapshot.reasons == collections.Counter(r for _, r, _ in said[3:])


def test_classifier_overrides_on_an_engine_without_one_stop_the_start(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path
) -> None:
    frames_from(tiny_dataset, tmp_path / "frames", 1)
    data = station_config(
        state_dir=tmp_path / "state",
        engine=tiny_engine.engine,
        camera={"kind": "replay", "folder": str(tmp_path / "frames")},
    )
    data["engine"]["pass_probability"] = 0.95
    cfg = load_config(write_config(tmp_path / "partsight.toml", data))
    assert cfg.engine.pass_probability == 0.95
    with pytest.raises(BundleError, match="pass_probability/ood_margin are set, but the engine"):
        Daemon(cfg, publisher=None)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("camera", "message"),
    [
        (
            {"pixel_format": "BGR8"},
            "camera.pixel_format: BGR8 gives colour (3 channels) frames; the engine takes mono "
            "(1 channel) frames (set a mono format, or use an engine trained on such frames)",
        ),
        ({"roi": [0, 0, 80, 64]}, "camera.roi: 64x80 (HxW) frames; the engine takes 64x64"),
    ],
)
def test_camera_frames_the_engine_cannot_take_are_a_start_up_error(
    tmp_path: Path,
    tiny_engine: FitResult,
    capsys: Any,
    camera: dict[str, Any],
    message: str,
) -> None:
    """A colour pixel format on a mono engine (or an ROI of another size) would make every
    part NOK "image": check-config and the daemon's start refuse it, in one line, exit 2."""
    (tmp_path / "frames").mkdir()
    data = station_config(
        state_dir=tmp_path / "state",
        engine=tiny_engine.engine,
        camera={**emulated_camera(tmp_path / "frames", (64, 64)), **camera},
    )
    path = write_config(tmp_path / "partsight.toml", data)
    assert check_config_main(path) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.splitlines() == [f"{path}: {message}"]
    assert run_main(path) == 2
    assert said_on_stderr(capsys) == [f"partsight: cannot start: {message}"]


@pytest.mark.usefixtures("restore_logging")
def test_classifier_settings_for_an_engine_without_one_fail_check_config_as_they_fail_start(
    tmp_path: Path, tiny_engine: FitResult, capsys: Any
) -> None:
    (tmp_path / "frames").mkdir()
    data = station_config(
        state_dir=tmp_path / "state",
        engine=tiny_engine.engine,
        camera={"kind": "replay", "folder": str(tmp_path / "frames")},
    )
    data["engine"]["pass_probability"] = 0.8
    path = write_config(tmp_path / "partsight.toml", data)
    assert check_config_main(path) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: engine.pass_probability: the engine has no heatmap classifier (drop "
        "pass_probability, or use an engine made by partsight-train classify)"
    ]
    assert run_main(path) == 2
    [line] = said_on_stderr(capsys)
    assert "pass_probability/ood_margin are set, but the engine has no heatmap classifier" in line


def test_replay_files_of_another_size_than_the_engine_takes_fail_check_config(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path, capsys: Any
) -> None:
    """The daemon would start and judge each such part NOK "image"; check-config says so
    first, naming how many and the first, and passes once the files fit."""
    frames_from(tiny_dataset, tmp_path / "frames", 3)
    wide = tmp_path / "frames" / "zz-wide.png"
    assert cv2.imwrite(str(wide), np.zeros((64, 80), np.uint8))
    data = station_config(
        state_dir=tmp_path / "state",
        engine=tiny_engine.engine,
        camera={"kind": "replay", "folder": str(tmp_path / "frames")},
    )
    path = write_config(tmp_path / "partsight.toml", data)
    assert check_config_main(path) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: camera.folder: 1 of 4 images are a size the engine does not take, e.g. "
        f'{wide}: 64x80 (HxW); the engine takes 64x64 (the daemon would judge them NOK "image")'
    ]
    wide.unlink()
    assert check_config_main(path) == 0
