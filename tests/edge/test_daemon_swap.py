"""Hot swap in the daemon, in-process: the engine slot, the swapper's refusals, and a running
pipeline (the shipped replay camera, ONNX Runtime, the engine store of signed tiny engines)
switching engines between two parts. Results stay in the daemon's outbox (no broker listens),
read back after it stops; the broker side is tests/integration/test_hot_swap.py."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.cli import main
from edge.config import Config, load_config
from edge.config.monitor import MonitorConfig
from edge.daemon import Daemon
from edge.daemon.engines import ActiveEngine, EngineSlot, EngineSource
from edge.daemon.monitoring import MonitorWorker
from edge.daemon.swap import ACTIVATE, RELOAD, EngineSwapper, SwapRequest
from edge.daemon.verdict import EngineInfo
from edge.inspector import Inspector
from edge.monitor import Monitor, StationSample, engine_key
from edge.mqtt import Outbox
from edge.store import EngineRef, EngineStore
from hw.camera.clock import SystemClock
from tests.edge.monitor_stream import Line, parts
from tests.engine_files import (
    Signer,
    edit_manifest,
    engine_file,
    flip_byte,
    make_signer,
    sign_folder,
    store_station,
    trusted_folder,
)
from tests.waiting import eventually
from trainer.fit import FitResult
from trainer.station_files import free_port, station_config, write_config

V1, V2 = EngineRef("tiny", "0.1.0"), EngineRef("tiny", "0.2.0")


@dataclass(frozen=True)
class Setup:
    template: Path  # station folder: v1 active; v2; v3 changed on disk; v4 failing its samples
    trusted: Path
    signer: Signer
    frames: Path


@pytest.fixture(scope="module")
def setup(
    tiny_engine: FitResult, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> Setup:
    work = tmp_path_factory.mktemp("swap")
    signer = make_signer(work / "keys")
    trusted = trusted_folder(work / "trusted", signer)
    template = work / "template"
    template.mkdir()
    config = store_station(template, trusted)
    for version in ("0.1.0", "0.2.0", "0.3.0"):
        file = engine_file(tiny_engine.engine, signer, work / "files", version)
        extra = ["--activate"] if version == "0.1.0" else []
        assert main(["engine", "install", str(file), "--config", str(config), *extra]) == 0
    store = EngineStore(load_config(config).engine_store_dir)
    model = store.root / "tiny" / "0.3.0" / "bundle" / "model.onnx"
    model.write_bytes(flip_byte(model.read_bytes()))  # changed on disk after its install
    # 0.4.0: signed and whole, but its golden samples fail here (as if installed for another
    # backend): planted by hand, since install itself would refuse it.
    planted = store.root / "tiny" / "0.4.0"
    shutil.copytree(store.root / "tiny" / "0.2.0", planted)
    bundle = planted / "bundle"
    edit_manifest(bundle, lambda raw: raw.update(version="0.4.0"))
    edit_manifest(bundle, lambda raw: [g.update(expected_score=99.0) for g in raw["golden"]])
    sign_folder(bundle, signer)
    frames = work / "frames"
    frames.mkdir()
    for i, image in enumerate(sorted((tiny_dataset / "test").rglob("*.png"))[:12]):
        shutil.copy(image, frames / f"{i:03d}.png")
    return Setup(template, trusted, signer, frames)


def station(setup: Setup, folder: Path, **camera: Any) -> Path:
    shutil.copytree(setup.template / "state", folder / "state")
    return store_station(
        folder,
        setup.trusted,
        camera={"kind": "replay", "folder": str(setup.frames), "loop": True, **camera},
        mqtt={"host": "127.0.0.1", "port": free_port(), "connect_timeout_s": 0.5},
        pipeline={"deadline_ms": 2000},
    )


def command(name: str, version: str, request_id: str) -> bytes:
    return json.dumps({"name": name, "version": version, "request_id": request_id}).encode()


def wait_for(done: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    assert eventually(done, timeout_s), f"timed out waiting for {what}"


def published(outbox: Path, suffix: str) -> list[dict[str, Any]]:
    with Outbox(outbox) as box:
        rows = box.pending(1_000_000)
    return [json.loads(m.payload) for m in rows if m.topic.endswith("/" + suffix)]


# -- the slot ------------------------------------------------------------------------------------


def test_the_slot_hands_each_part_the_engine_active_at_its_trigger(
    tiny_engine: FitResult,
) -> None:
    inspector = Inspector.open(tiny_engine.engine)
    old = ActiveEngine(inspector, EngineInfo("tiny", "0.1.0", "a" * 64, "onnxruntime", "fp32"))
    new = ActiveEngine(
        inspector, EngineInfo("tiny", "0.2.0", "b" * 64, "onnxruntime", "fp32"), since_ns=1000
    )
    slot = EngineSlot(old)
    slot.switch(new)
    assert slot.current is new
    assert slot.for_trigger(999) is old  # triggered before the switch, still queued
    assert slot.for_trigger(1000) is new
    assert slot.for_trigger(999) is new  # the old engine is let go once a new part came
    with pytest.raises(ValueError, match="back in time"):
        slot.switch(ActiveEngine(inspector, old.info, since_ns=500))


# -- the swapper's refusals ------------------------------------------------------------------------


def swapper_for(config: Config) -> tuple[EngineSwapper, list[dict[str, Any]]]:
    """A swapper (not started) on the station `config` runs, and the answers it gives."""
    source = EngineSource(config)
    answers: list[dict[str, Any]] = []
    swapper = EngineSwapper(
        slot=EngineSlot(source.open()),
        source=source,
        clock=SystemClock(),
        stop=threading.Event(),
        on_fatal=lambda name, exc: None,
        announce=lambda active: None,
        respond=answers.append,
    )
    return swapper, answers


@pytest.fixture
def swapper(setup: Setup, tmp_path: Path) -> tuple[EngineSwapper, list[dict[str, Any]]]:
    return swapper_for(load_config(station(setup, tmp_path)))


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (command("tiny", "0.3.0", "r1"), "model.onnx does not match its sha256 (tampered?)"),
        (command("tiny", "0.4.0", "r2"), "golden sample golden/"),
        (command("tiny", "9.9.9", "r3"), "tiny@9.9.9 is not installed"),
        (command("..", "1.0.0", "r4"), "'..' cannot be an engine name in the store"),
        (b'{"name": "tiny", "request_id": "r5"}', "malformed command: version: Field required"),
        (b'{"name": "tiny", "version": "0.2.0", "request_id": "r6", "force": true}',
         "malformed command: force: Extra inputs are not permitted"),
        (b"activate tiny 0.2.0", "malformed command: payload: Invalid JSON"),
    ],
    ids=["changed-on-disk", "golden-fails", "not-installed", "bad-name", "no-version",
         "unknown-key", "not-json"],
)  # fmt: skip
def test_a_refused_activation_keeps_the_running_engine_and_says_why(
    swapper: tuple[EngineSwapper, list[dict[str, Any]]], payload: bytes, error: str
) -> None:
    worker, answers = swapper
    running = worker.slot.current
    request = worker.parse(payload)  # what the worker thread does with a message
    if request is not None:
        worker.serve(request)
    assert worker.slot.current is running
    [answer] = answers
    assert answer["ok"] is False
    assert error in answer["error"]
    assert answer["engine"]["version"] == "0.1.0"
    request_id = json.loads(payload).get("request_id") if payload.startswith(b"{") else None
    assert answer["request_id"] == request_id
    assert EngineStore(worker.source.config.engine_store_dir).active() == V1


def test_a_request_beyond_the_queue_is_answered_busy(
    swapper: tuple[EngineSwapper, list[dict[str, Any]]],
) -> None:
    """SCADA waits for an answer to every request id: one the swapper cannot queue is
    answered at once, not only logged."""
    worker, answers = swapper  # not started: nothing drains its queue
    for i in range(8):
        worker.command(command("tiny", "0.2.0", f"queued-{i}"))
    assert answers == []
    worker.command(command("tiny", "0.2.0", "one-too-many"))
    [answer] = answers
    assert (answer["request_id"], answer["ok"]) == ("one-too-many", False)
    assert answer["error"].startswith("busy: 8 engine requests are waiting")
    assert answer["engine"]["version"] == "0.1.0"


def test_a_swap_loading_while_the_daemon_stops_is_given_up(
    swapper: tuple[EngineSwapper, list[dict[str, Any]]],
) -> None:
    """A stop does not wait for an engine load (a TensorRT build can take a minute); the load
    that finishes afterwards is neither recorded in the store nor switched to."""
    worker, answers = swapper
    running = worker.slot.current
    worker.stop_event.set()
    outcome = worker.serve(SwapRequest(ACTIVATE, V2, "late"))
    assert not outcome.ok and worker.slot.current is running
    assert answers[-1]["error"] == "the daemon is stopping"
    assert EngineStore(worker.source.config.engine_store_dir).active() == V1


def test_activating_the_running_engine_records_it_and_loads_nothing(
    swapper: tuple[EngineSwapper, list[dict[str, Any]]],
) -> None:
    worker, answers = swapper
    store = EngineStore(worker.source.config.engine_store_dir)
    running = worker.slot.current
    store.activate(V2, worker.source.trust)  # a technician's `engine activate`, no reload yet
    outcome = worker.serve(SwapRequest(ACTIVATE, V1, "r1"))
    assert outcome.ok and not outcome.switched
    assert worker.slot.current is running
    assert store.active() == V1  # SCADA's choice is what a restart runs
    assert answers[-1]["ok"] is True and answers[-1]["engine"]["version"] == "0.1.0"


def test_an_activation_needs_the_store(
    setup: Setup, tiny_engine: FitResult, tmp_path: Path
) -> None:
    data = station_config(
        state_dir=tmp_path / "state",
        engine=tiny_engine.engine,
        camera={"kind": "replay", "folder": str(setup.frames)},
    )
    worker, answers = swapper_for(load_config(write_config(tmp_path / "partsight.toml", data)))
    worker.serve(SwapRequest(ACTIVATE, V2, "r1"))
    assert answers[-1]["error"] == (
        f"this station runs the engine folder {tiny_engine.engine}; activating an engine by "
        "name needs [engine] store = true"
    )
    outcome = worker.serve(SwapRequest(RELOAD, None))  # the same folder: nothing to switch
    assert outcome.ok and not outcome.switched and len(answers) == 1


# -- a running pipeline --------------------------------------------------------------------------


def test_a_swap_while_parts_flow_switches_between_two_parts(setup: Setup, tmp_path: Path) -> None:
    config = load_config(station(setup, tmp_path, rate_hz=30.0))
    daemon = Daemon(config)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()))
    thread.start()
    try:
        wait_for(lambda: daemon.counters.parts >= 30, "30 parts")
        daemon.swapper.command(command("tiny", "0.2.0", "to-v2"))
        wait_for(lambda: daemon.engines.current.info.version == "0.2.0", "the switch to 0.2.0")
        switched_at = daemon.counters.parts
        wait_for(lambda: daemon.counters.parts >= switched_at + 30, "30 parts on 0.2.0")
        assert main(["engine", "rollback", "--config", str(tmp_path / "partsight.toml")]) == 0
        daemon.request_reload()  # what SIGHUP does
        wait_for(lambda: daemon.engines.current.info.version == "0.1.0", "the reload")
        back_at = daemon.counters.parts
        wait_for(lambda: daemon.counters.parts >= back_at + 30, "30 parts on 0.1.0 again")
    finally:
        daemon.request_stop("test")
        thread.join(30)
    assert codes == [0]
    results = published(config.mqtt.outbox, "result")
    answers = published(config.mqtt.outbox, "cmd/response")
    assert [(a["command"], a["request_id"], a["ok"]) for a in answers] == [
        ("engine/activate", "to-v2", True),
        ("reload", None, True),
    ]
    to_v2, back = (a["active_since_monotonic_ns"] for a in answers)
    ids = [r["part_id"] for r in results]
    assert ids == list(range(1, len(ids) + 1))  # none lost, none twice
    # Parts the engine never saw (a frames queue full while the machine is busy) carry no
    # engine; every other part names the engine that was active at its trigger.
    judged = [r for r in results if r["engine"] is not None]
    assert all(r["reason"] == "overload" for r in results if r["engine"] is None)
    expected = [
        "0.1.0" if t < to_v2 or t >= back else "0.2.0"
        for t in (r["trigger_monotonic_ns"] for r in judged)
    ]
    assert [r["engine"]["version"] for r in judged] == expected
    assert expected.count("0.2.0") >= 20 and expected[-20:] == ["0.1.0"] * 20


def test_the_monitor_starts_afresh_at_the_first_part_of_a_swapped_in_engine(
    tmp_path: Path,
) -> None:
    """The metrics monitor keys its baselines by engine: results of parts the old engine judged
    keep feeding the old baselines; the first result of the new engine resets them, from the
    new engine's validation figures."""
    config = MonitorConfig.model_validate(
        {"state_file": tmp_path / "monitor-state.json", "baseline": "manifest"}
    )
    old_figures = {"good_images": 40, "good_brightness_mean": 0.5, "good_brightness_std": 0.01}
    new_figures = {"good_images": 40, "good_brightness_mean": 0.3, "good_brightness_std": 0.01}
    old = {"name": "tiny", "version": "0.1.0", "model_sha256": "a" * 64}
    new = {"name": "tiny", "version": "0.2.0", "model_sha256": "b" * 64}
    stop = threading.Event()
    worker = MonitorWorker(
        config=config,
        monitor=Monitor(config, engine=engine_key("tiny", "0.1.0", "a" * 64), figures=old_figures),
        station="station-1",
        publish=None,
        sample=lambda: StationSample(time_s=time.monotonic()),
        upstream_done=lambda: True,
        stop=stop,
        on_fatal=lambda _name, exc: None,
        figures_of=lambda key: new_figures if key.startswith("tiny@0.2.0") else None,
    )
    worker.start()
    try:
        stream = [*parts(Line(), 1, 40, np.random.default_rng(0))]
        for payload in stream[:25]:
            worker.offer({**payload, "engine": old})
        wait_for(lambda: worker.counters()["queued"] == 0, "the monitor to take the old parts")
        assert worker.monitor.engine == engine_key("tiny", "0.1.0", "a" * 64)
        for payload in stream[25:]:
            worker.offer({**payload, "engine": new})
        wait_for(lambda: worker.counters()["queued"] == 0, "the monitor to take the new parts")
        assert worker.monitor.engine == engine_key("tiny", "0.2.0", "b" * 64)
        # standardised against the new engine's validation figures, not the old one's
        brightness = worker.monitor.snapshot()["metrics"]["brightness"]
        assert brightness["baseline"] == pytest.approx(0.3, rel=1e-3)
    finally:
        stop.set()
        assert worker.join(10.0)
