"""The monitor on the daemon, end to end: runs of synthetic parts with a drift injected at a known
part (trainer/synth_drift.py), played by the replay camera, judged by an engine trained here,
alerts read from a real Mosquitto. Each drift raises its alert, raises nothing outside what it
physically moves (listed with each test), and every alert clears once the cause is removed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from edge.config import load_config
from edge.daemon import Daemon
from edge.images import read_image
from edge.inspector import Inspector
from tests.conftest import TINY_SIZE
from tests.integration.broker import Broker, Received, Subscriber
from tests.integration.conftest import MakeBroker
from trainer.fit import FitConfig, FitResult, fit
from trainer.model import DAEConfig
from trainer.station_files import STATION, station_config, write_config
from trainer.synth import SynthConfig, write_dataset
from trainer.synth_drift import Drift, write_run
from trainer.train import TrainConfig

pytestmark = pytest.mark.integration

PREFIX = "partsight/{site}/{line}/{station}/".format(**STATION)
WARMUP = 200
# Parts in a fixture: they lie within ±1 px and ±0.5° of one place in a larger frame, and the
# engine registers each one, so where the part lies is measured.
FIXTURED = SynthConfig(size=(64, 64), frame=(96, 96), pose_jitter_px=1.0, pose_jitter_deg=0.5)


@pytest.fixture(scope="module")
def fixtured_engine(tmp_path_factory: pytest.TempPathFactory) -> FitResult:
    root = tmp_path_factory.mktemp("fixtured") / "data"
    write_dataset(root, 24, FIXTURED, seed=3, progress=False)
    config = FitConfig(
        model=DAEConfig(width=4, depth=3, bottleneck=4),
        train=TrainConfig(epochs=5, batch_size=8, seed=0),
        register="on",
        registration_device="cpu",
        name="fixtured",
        show_progress=False,
    )
    return fit(root, tmp_path_factory.mktemp("e") / "fixtured-engine", config)


def monitored_daemon(
    tmp_path: Path,
    engine: Path,
    frames: Path,
    broker: Broker,
    threshold: float | None = None,
    warmup: int = WARMUP,
) -> Daemon:
    data = station_config(
        state_dir=tmp_path / "state",
        engine=engine,
        camera={"kind": "replay", "folder": str(frames), "free_run": True, "loop": False},
        mqtt={"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1},
        pipeline={"deadline_ms": 5000},
    )
    if threshold is not None:
        data["engine"]["threshold"] = threshold
    data["monitor"] = {
        "warmup_parts": warmup,
        "clear_parts": 50,
        "min_interval_s": 0.0,
        "metrics": {"line_idle": {"enabled": False}},  # a replay may pause under load
    }
    return Daemon(load_config(write_config(tmp_path / "partsight.toml", data)))


def line_threshold(engine: Path, frames: Path, count: int = 100) -> float:
    """The threshold a technician would set on this line: just above the scores of its first
    `count` parts, all good (the tiny engine's own threshold, from six validation images,
    rejects one good part in ten)."""
    inspector = Inspector.open(engine)
    files = sorted(frames.glob("*.png"))[:count]
    scores = [inspector.inspect(read_image(f), str(f)).score for f in files]
    return 1.2 * max(s for s in scores if s is not None)


def run_to_the_end(daemon: Daemon, limit_s: float = 600.0) -> None:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()))
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), "the replay did not end"
    assert codes == [0]


def alert_events(messages: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages if m.topic == PREFIX + "alert"]


def raised_and_cleared(messages: list[Received]) -> tuple[list[tuple[str, int]], set[str]]:
    """[(metric, part id)] of every raise, and the metrics still active at the end."""
    raised, active = [], set()
    for event in alert_events(messages):
        metric = event["alert"]["metric"]
        if event["event"] == "raised":
            raised.append((metric, event["part_id"]))
            active.add(metric)
        else:
            active.discard(metric)
    return raised, active


# What a dimming lamp may move besides the brightness: on these 8-bit frames the highlights
# come out of saturation and dark pixels round differently (contrast, focus), and the engine
# scores darker parts higher (score, its p99, and at last anomaly rejects).
LAMP_FAMILY = {"brightness", "contrast", "focus", "score", "score_p99", "anomaly_rate"}
# A scratch or a crack adds edges to a 64×64 frame: the focus measure rises with the defects.
DEFECT_FAMILY = {"anomaly_rate", "focus", "contrast"}


def test_a_dimming_lamp_raises_the_brightness_and_all_clears_with_a_new_lamp(
    tmp_path: Path, tiny_engine: FitResult, make_broker: MakeBroker
) -> None:
    lamp = Drift.parse("lamp:301-601:0.01")  # 1 % of the light per 50 parts, for 300 parts
    frames = tmp_path / "run"
    # 700 parts after the new lamp: the recent score p99 is over the last 500 OK parts, so an
    # alert raised by the dim lamp clears 500 + clear_parts parts after it is replaced
    write_run(frames, 1300, SynthConfig(size=TINY_SIZE), 3, [lamp], 0.0, progress=False)
    broker = make_broker()
    scada = Subscriber(broker, [PREFIX + "alert"], name="scada")
    scada.connect()
    threshold = line_threshold(tiny_engine.engine, frames)
    daemon = monitored_daemon(tmp_path, tiny_engine.engine, frames, broker, threshold)
    run_to_the_end(daemon)
    got = scada.wait_for(lambda m: bool(alert_events(m)), timeout_s=10)
    raised, active = raised_and_cleared(got)
    print("raised:", raised)
    assert set(m for m, _ in raised) <= LAMP_FAMILY, raised
    seen = dict(raised)["brightness"]
    assert lamp.start < seen < lamp.end, "the brightness alert came while the lamp dimmed"  # type: ignore[operator]
    assert all(part > lamp.start for _, part in raised)  # nothing before the lamp dimmed
    assert active == set(), "every alert cleared once the lamp was replaced"
    message = next(e for e in alert_events(got) if e["alert"]["metric"] == "brightness")["message"]
    assert message.startswith("image brightness down ")
    print(f"brightness alert {seen - lamp.start + 1} parts after the lamp began to dim")
    assert daemon.monitor is not None and daemon.monitor.counters()["dropped"] == 0
    assert daemon.status().endswith(", alerts 0")  # the systemd STATUS line
    snapshot = daemon.metrics()["monitor"]  # the metrics topic
    assert snapshot["parts"] == 1300 and snapshot["warmup_done"] is True
    assert snapshot["metrics"]["brightness"]["baseline"] == pytest.approx(0.22, abs=0.02)


def test_a_defect_rate_stepping_up_raises_the_anomaly_rate_and_clears(
    tmp_path: Path, tiny_engine: FitResult, make_broker: MakeBroker
) -> None:
    step = Drift.parse("defects:601-1301:0.10")  # 2 % → 10 % for 700 parts
    frames = tmp_path / "run"
    write_run(frames, 1900, SynthConfig(size=TINY_SIZE), 3, [step], 0.02, progress=False)
    broker = make_broker()
    scada = Subscriber(broker, [PREFIX + "alert"], name="scada")
    scada.connect()
    threshold = line_threshold(tiny_engine.engine, frames)
    daemon = monitored_daemon(tmp_path, tiny_engine.engine, frames, broker, threshold, warmup=500)
    run_to_the_end(daemon)
    got = scada.wait_for(lambda m: bool(alert_events(m)), timeout_s=10)
    raised, active = raised_and_cleared(got)
    print("raised:", raised)
    assert set(m for m, _ in raised) <= DEFECT_FAMILY, raised
    seen = dict(raised)["anomaly_rate"]
    assert step.start < seen < step.end, "the rate alert came during the step"  # type: ignore[operator]
    assert active == set(), "every alert cleared once the rate was back"
    message = next(e for e in alert_events(got) if e["alert"]["metric"] == "anomaly_rate")
    assert message["message"].startswith("anomaly rejects up from ")
    print(f"anomaly_rate alert {seen - step.start + 1} parts after the step")


def test_a_part_shifted_in_its_fixture_raises_its_position_and_clears(
    tmp_path: Path, fixtured_engine: FitResult, make_broker: MakeBroker
) -> None:
    shift = Drift.parse("shift:301-451:3")  # 3 px to the right for 150 parts
    frames = tmp_path / "run"
    write_run(frames, 650, FIXTURED, 3, [shift], base_defect_rate=0.0, progress=False)
    broker = make_broker()
    scada = Subscriber(broker, [PREFIX + "alert"], name="scada")
    scada.connect()
    daemon = monitored_daemon(tmp_path, fixtured_engine.engine, frames, broker)
    run_to_the_end(daemon)
    got = scada.wait_for(lambda m: len(alert_events(m)) >= 2, timeout_s=10)
    events = [(e["event"], e["alert"]["metric"], e["part_id"]) for e in alert_events(got)]
    print("events:", events)
    assert [(kind, metric) for kind, metric, _ in events] == [
        ("raised", "pose_x"),
        ("cleared", "pose_x"),
    ], events
    (_, _, seen), (_, _, gone) = events
    assert shift.start <= seen < shift.start + 20 and gone > shift.end  # type: ignore[operator]
    alert = alert_events(got)[0]["alert"]
    assert alert["direction"] == "up" and alert["message"].startswith("part position x up ")
    assert 2.0 < alert["value"] - alert["baseline"] < 4.0
    print(f"delay: {seen - shift.start + 1} parts; cleared {gone - shift.end + 1} parts after")  # type: ignore[operator]
