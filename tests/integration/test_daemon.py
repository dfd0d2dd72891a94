"""The line daemon with the real pieces: the pylon camera emulation replaying PNG frames, a real
Mosquitto, ONNX Runtime and the tiny engine. Some tests run the daemon in this process (to
reach the emulated camera's test features, or to give it a stuck engine), the others as a
subprocess exactly as `partsight run --config` starts it, so it can be SIGTERMed and SIGKILLed.

The broker keeps sessions across restarts (persistence on), and the subscriber has a
persistent session: a broker without persistence forgets the subscription when it restarts,
and results the daemon re-sends before the subscriber is back would reach nobody. The
daemon's outbox is what guarantees the re-send; the persistent session only makes it visible.
"""

from __future__ import annotations

import os

# Before pypylon is imported: its transport layer reads this once, when it initialises.
os.environ["PYLON_CAMEMU"] = "2"

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import Config, load_config
from edge.daemon import Daemon
from edge.inspector import Inspector
from edge.mqtt import RESULT_SCHEMA_PATH, Outbox
from edge.systemd import Notifier
from tests.integration.broker import Broker
from tests.integration.conftest import MakeBroker
from tests.integration.notify import NotifySocket
from trainer.fit import FitResult
from trainer.station_files import (
    STATION,
    daemon_command,
    daemon_env,
    emulated_camera,
    station_config,
    write_config,
)

pylon: Any = pytest.importorskip(
    "pypylon.pylon", reason="pypylon is not installed (pip install pypylon)"
)
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test dependency")

pytestmark = pytest.mark.integration

PREFIX = "partsight/{site}/{line}/{station}/".format(**STATION)
SIZE = (64, 64)  # the tiny engine's frames (W, H)
MAX_INFLIGHT = 20


@pytest.fixture(scope="module", autouse=True)
def _emulation_present() -> None:
    serials = {d.GetSerialNumber() for d in pylon.TlFactory.GetInstance().EnumerateDevices()}
    if "0815-0000" not in serials:
        pytest.skip(f"pylon camera emulation not available; found {sorted(serials)}")


# -- helpers ---------------------------------------------------------------------------------------


def frames(dataset: Path, folder: Path, count: int = 20) -> Path:
    """The first `count` test images in one folder, which the emulation replays in name order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(sorted((dataset / "test").rglob("*.png"))[:count]):
        shutil.copy(source, folder / f"{i:03d}.png")
    return folder


def persistent_broker(make_broker: MakeBroker, tmp_path: Path) -> Broker:
    store = tmp_path / "broker-store"
    store.mkdir()
    return make_broker(
        extra_config=[
            "persistence true",  # overrides the `persistence false` above it
            f"persistence_location {store}/",
            "max_queued_messages 100000",
        ]
    )


def config_file(
    tmp_path: Path,
    engine: Path,
    replay: Path,
    broker: Broker | None,
    pipeline: dict[str, Any] | None = None,
    camera: dict[str, Any] | None = None,
) -> Path:
    mqtt_table = (
        None
        if broker is None
        else {
            "host": broker.host,
            "port": broker.port,
            "max_inflight": MAX_INFLIGHT,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "keepalive_s": 5,
        }
    )
    data = station_config(
        state_dir=tmp_path / "state",
        engine=engine,
        camera=emulated_camera(replay, SIZE, **(camera or {})),
        mqtt=mqtt_table,
        pipeline={"deadline_ms": 2000, "trigger": {"free_run": True}, **(pipeline or {})},
    )
    return write_config(tmp_path / "partsight.toml", data)


class Results:
    """A subscriber to the station's topics with a persistent session (same client id, clean
    session off), reconnecting by itself when the broker comes back."""

    def __init__(self, broker: Broker, name: str = "scada") -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[str, bytes, bool]] = []
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        client.reconnect_delay_set(1, 2)  # seconds; paho takes whole ones
        client.on_connect = lambda c, *_: c.subscribe(PREFIX + "#", qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._message
        client.connect(broker.host, broker.port, keepalive=5)
        client.loop_start()
        self.client = client
        assert self._subscribed.wait(5.0), "the subscriber could not subscribe"

    def _message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def results(self) -> list[dict[str, Any]]:
        """Every result message in arrival order, duplicates included."""
        with self._lock:
            rows = [p for t, p, _ in self.messages if t == PREFIX + "result"]
        return [json.loads(p) for p in rows]

    def ids(self) -> list[int]:
        return [r["part_id"] for r in self.results()]

    def on(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == PREFIX + suffix]

    def states(self) -> list[str]:
        """The `state` of each status message (JSON, edge/mqtt/status.py)."""
        return [json.loads(p)["state"] for p in self.on("status")]

    def wait(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribers() -> Iterator[Callable[..., Results]]:
    made: list[Results] = []

    def make(broker: Broker, name: str = "scada") -> Results:
        made.append(Results(broker, name))
        return made[-1]

    yield make
    for results in made:
        results.close()


def deduplicated(ids: list[int]) -> list[int]:
    seen: set[int] = set()
    return [i for i in ids if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def check_results(results: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(RESULT_SCHEMA_PATH.read_text()))
    for result in results:
        validator.validate(result)


class Process:
    """`partsight run --config FILE` as a subprocess on the camera emulation."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            daemon_command(config), env=daemon_env(), stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def processes() -> Iterator[Callable[[Path, Path], Process]]:
    made: list[Process] = []

    def start(config: Path, log: Path) -> Process:
        made.append(Process(config, log))
        return made[-1]

    yield start
    for process in made:
        process.close()


def run_in_thread(daemon: Daemon) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()), daemon=True)
    thread.start()
    return thread, codes


def outbox_ids(path: Path) -> list[int]:
    with Outbox(path) as outbox:
        rows = outbox.pending(1_000_000)
    return [json.loads(m.payload)["part_id"] for m in rows if m.topic.endswith("/result")]


# -- tests -----------------------------------------------------------------------------------------


def test_every_result_arrives_in_order_through_a_broker_outage(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    make_broker: MakeBroker,
    subscribers: Callable[..., Results],
) -> None:
    broker = persistent_broker(make_broker, tmp_path)
    results = subscribers(broker)
    replay = frames(tiny_dataset, tmp_path / "frames")
    daemon = Daemon(load_config(config_file(tmp_path, tiny_engine.engine, replay, broker)))
    thread, codes = run_in_thread(daemon)
    try:
        results.wait(lambda: len(results.ids()) >= 150, 60, "150 results before the outage")
        broker.stop()
        handed_out = daemon.counters.parts
        time.sleep(3.0)  # parts keep being judged; their results wait in the outbox
        assert daemon.counters.parts > handed_out + 20, "the pipeline waited on the broker"
        broker.start()
        results.wait(lambda: daemon.counters.parts >= 520, 60, "520 parts")
    finally:
        daemon.request_stop("test")
        thread.join(20)
    assert codes == [0]
    assert daemon.acquisition is not None
    parts = daemon.acquisition.parts
    results.wait(lambda: set(results.ids()) >= set(range(1, parts + 1)), 20, "every result")
    ids = results.ids()
    assert deduplicated(ids) == list(range(1, parts + 1))  # all of them, in part order
    assert len(ids) - parts <= MAX_INFLIGHT  # duplicates: at most the in-flight window
    check_results(results.results())
    assert daemon.counters.snapshot().overload == 0
    assert results.states()[-1] == "stopped"
    engine = json.loads(results.on("engine")[-1])
    assert engine["name"] == "tiny" and engine["backend"] == "onnxruntime"


def test_a_daemon_killed_while_the_broker_is_down_loses_nothing_from_its_outbox(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    make_broker: MakeBroker,
    subscribers: Callable[..., Results],
    processes: Callable[[Path, Path], Process],
) -> None:
    broker = persistent_broker(make_broker, tmp_path)
    results = subscribers(broker)
    replay = frames(tiny_dataset, tmp_path / "frames")
    config = config_file(tmp_path, tiny_engine.engine, replay, broker)
    first = processes(config, tmp_path / "daemon1.log")
    results.wait(lambda: len(results.ids()) >= 50, 60, "50 results")
    broker.stop()
    time.sleep(2.0)  # results pile up in the outbox
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    before = set(results.ids())
    waiting = outbox_ids(load_config(config).mqtt.outbox)
    assert len(waiting) >= 10, "the outbox should hold the results of the outage"
    # Nothing between the delivered results and the outbox is missing: a contiguous prefix.
    assert sorted(before | set(waiting)) == list(range(1, max(waiting) + 1))

    broker.start()
    second = processes(config, tmp_path / "daemon2.log")
    results.wait(lambda: set(results.ids()) >= set(waiting), 60, "the outbox after a restart")
    results.wait(lambda: max(results.ids()) > max(waiting) + 20, 60, "new parts")
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(15) == 0, second.log()[-3000:]
    new = sorted(set(results.ids()) - before - set(waiting))
    assert new and new[0] > max(waiting), "part ids must continue above the old ones"
    check_results(results.results())


def test_failed_buffers_and_a_wrong_size_frame_are_rejected_and_the_daemon_goes_on(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    make_broker: MakeBroker,
    subscribers: Callable[..., Results],
) -> None:
    broker = make_broker()
    results = subscribers(broker)
    replay = frames(tiny_dataset, tmp_path / "frames", count=8)
    cv2.imwrite(str(replay / "005.png"), np.full((48, 80), 128, np.uint8))  # wrong size
    config = config_file(
        tmp_path, tiny_engine.engine, replay, broker, pipeline={"trigger": {"rate_hz": 40.0}}
    )
    daemon = Daemon(load_config(config))
    thread, codes = run_in_thread(daemon)
    try:
        results.wait(lambda: len(results.ids()) >= 20, 60, "20 results")
        basler: Any = getattr(daemon.camera, "camera", daemon.camera)  # inside the reconnector
        nodes = basler.instant_camera.GetNodeMap()
        nodes.GetNode("ForceFailedBufferCount").SetValue(2)
        nodes.GetNode("ForceFailedBuffer").Execute()
        failed_at = len(results.ids())
        results.wait(lambda: len(results.ids()) >= failed_at + 30, 60, "parts after the failures")
    finally:
        daemon.request_stop("test")
        thread.join(20)
    assert codes == [0]
    got = results.results()
    check_results(got)
    assert deduplicated([r["part_id"] for r in got]) == list(range(1, len(got) + 1))
    camera_faults = [r for r in got if r["reason"] == "camera"]
    assert len(camera_faults) == 2 and all(r["verdict"] == "ERROR" for r in camera_faults)
    image = [r for r in got if r["reason"] == "image"]
    assert image and all(r["verdict"] == "NOK" for r in image)
    assert all(r["camera"]["frame_counter"] % 8 == 5 for r in image)  # the wrong-size file
    judged = [r for r in got if r["reason"] in ("", "anomaly")]
    assert len(judged) >= 20 and judged[-1]["part_id"] > camera_faults[-1]["part_id"]
    assert daemon.camera.stats.failed_buffers >= 2 + len(image)


def test_sigterm_finishes_in_flight_parts_flushes_and_exits_0(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    make_broker: MakeBroker,
    subscribers: Callable[..., Results],
    processes: Callable[[Path, Path], Process],
) -> None:
    broker = make_broker()
    results = subscribers(broker)
    replay = frames(tiny_dataset, tmp_path / "frames")
    config = config_file(tmp_path, tiny_engine.engine, replay, broker)
    daemon = processes(config, tmp_path / "daemon.log")
    results.wait(lambda: len(results.ids()) >= 100, 60, "100 results")
    sent = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.proc.wait(15)
    took = time.monotonic() - sent
    log = daemon.log()
    assert code == 0, log[-3000:]
    assert took < 5.0, f"took {took:.1f} s to stop"
    handed_out = int(log.split("acquisition stopped after ")[1].split()[0])
    # Every part handed out got its result, and the outbox was flushed to the broker.
    results.wait(lambda: len(set(results.ids())) >= handed_out, 5, "the last results")
    assert deduplicated(results.ids()) == list(range(1, handed_out + 1))
    assert outbox_ids(load_config(config).mqtt.outbox) == []
    assert results.states()[-1] == "stopped"
    late = Results(broker, name="late-reader")  # the retained status, for whoever asks later
    try:
        late.wait(lambda: late.states() == ["stopped"], 5, "the retained status")
    finally:
        late.close()


class Stallable:
    """The real inspector with a switch that makes it hang: a stalled pipeline on cue (no real
    engine can be made to hang on purpose)."""

    def __init__(self, inner: Inspector) -> None:
        self.inner, self.bundle, self.threshold = inner, inner.bundle, inner.threshold
        self.backend = inner.backend
        self.running = threading.Event()
        self.running.set()

    def inspect(
        self, image: np.ndarray, source: str = "frame", bit_depth: int | None = None
    ) -> Any:
        self.running.wait(30.0)
        return self.inner.inspect(image, source, bit_depth)


def test_systemd_ready_watchdog_only_while_parts_flow_and_stopping(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path
) -> None:
    replay = frames(tiny_dataset, tmp_path / "frames")
    config: Config = load_config(
        config_file(tmp_path, tiny_engine.engine, replay, None, pipeline={"heartbeat_s": 0.2})
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    notifier = Notifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"})
    engine = Stallable(Inspector.open(tiny_engine.engine))
    daemon = Daemon(config, inspector=engine, notifier=notifier, status_interval_s=0.5)
    thread, codes = run_in_thread(daemon)
    try:
        deadline = time.monotonic() + 30
        while len(notify.times("WATCHDOG=1")) < 3:
            assert time.monotonic() < deadline, f"no watchdog feeds: {notify.messages}"
            time.sleep(0.05)
        assert notify.messages[0][1] == "READY=1"
        assert notify.times("READY=1")[0] < notify.times("WATCHDOG=1")[0]

        engine.running.clear()  # the engine hangs: nothing moves through the pipeline
        stalled = time.monotonic()
        time.sleep(1.5)
        fed = [t for t in notify.times("WATCHDOG=1") if t > stalled + 0.5]
        assert fed == [], "the watchdog was fed while the pipeline was stalled"

        engine.running.set()
        resumed = time.monotonic()
        while not [t for t in notify.times("WATCHDOG=1") if t > resumed]:
            assert time.monotonic() < resumed + 10, "the watchdog was not fed again"
            time.sleep(0.05)
    finally:
        engine.running.set()
        daemon.request_stop("test")
        thread.join(20)
    assert codes == [0]
    assert notify.times("STOPPING=1"), notify.messages
    assert any(line.startswith("STATUS=") and "parts" in line for _, line in notify.messages)
    notify.close()


def unplug_on_next_grab(basler: Any) -> None:
    """Unplug the emulated camera (FirePnPCallback: its removal event) at the start of its next
    grab, on the daemon's acquisition thread. Not from the test's thread: the emulation runs the
    removal handler inside Execute(), the daemon then closes the camera, and a DestroyDevice on
    one thread while Execute() unwinds on another crashed pylon (a segfault, seen once in a full
    CI run). On a line, pylon itself raises the event; no other thread holds the device."""
    grab = basler.grab

    def grab_unplugged(timeout_s: float) -> Any:
        del basler.grab  # once: back to the camera's own method
        basler.instant_camera.GetNodeMap().GetNode("FirePnPCallback").Execute()
        return grab(timeout_s)

    basler.grab = grab_unplugged


def test_a_camera_that_is_gone_shows_on_status_and_in_systemd_status(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    make_broker: MakeBroker,
    subscribers: Callable[..., Results],
) -> None:
    """The emulated camera is unplugged (its removal event) and comes back at the reconnection
    attempt 1.5 s later. Meanwhile every trigger is a part rejected as ERROR camera; the
    camera's state (down, why, when the next attempt comes) is on the retained status, in the
    STATUS line and on `alert`, and back to up afterwards."""
    broker = make_broker()
    results = subscribers(broker)
    replay = frames(tiny_dataset, tmp_path / "frames")
    config = load_config(
        config_file(
            tmp_path,
            tiny_engine.engine,
            replay,
            broker,
            pipeline={"trigger": {"rate_hz": 20.0}},
            camera={"reconnect_min_s": 1.5, "reconnect_max_s": 3.0},
        )
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    notifier = Notifier({"NOTIFY_SOCKET": str(notify.path)})
    daemon = Daemon(config, notifier=notifier, status_interval_s=0.5)
    thread, codes = run_in_thread(daemon)
    try:
        results.wait(lambda: len(results.ids()) >= 20, 60, "20 results")
        unplug_on_next_grab(getattr(daemon.camera, "camera", daemon.camera))  # in the reconnector
        results.wait(lambda: daemon.camera.stats.reconnects == 1, 30, "the camera back")
        back = len(results.ids())
        results.wait(lambda: len(results.ids()) >= back + 20, 30, "20 parts after")
    finally:
        daemon.request_stop("test")
        thread.join(20)
    assert codes == [0]
    got = results.results()
    check_results(got)
    assert deduplicated([r["part_id"] for r in got]) == list(range(1, len(got) + 1))
    gone = [r for r in got if r["reason"] == "camera"]
    assert len(gone) >= 10 and {r["verdict"] for r in gone} == {"ERROR"}  # ~1.5 s at 20/s
    ids = [r["part_id"] for r in gone]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # one outage, every trigger in it
    down = [s for s in notify.statuses() if "camera DOWN (camera lost: basler:0815-0000" in s]
    assert down and "every part is rejected (ERROR camera) until it is back; retry in" in down[0]
    running = [s for s in notify.statuses() if not s.startswith("stopping")]
    assert "camera up" in running[-1]  # the last STATUS before the stop's own
    statuses = [json.loads(p) for p in results.on("status")]
    camera_states = [(s["state"], s["health"]["camera"]["state"]) for s in statuses]
    assert ("degraded", "down") in camera_states and camera_states[-1] == ("stopped", "up")
    degraded = next(s for s in statuses if s["state"] == "degraded")
    assert 0 < degraded["health"]["camera"]["retry_in_s"] <= 1.5
    alerts = [json.loads(p) for p in results.on("alert")]
    assert [(a["component"], a["state"]) for a in alerts] == [("camera", "down"), ("camera", "up")]
    notify.close()
