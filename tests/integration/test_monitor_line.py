"""The monitor on the daemon, end to end: runs of synthetic parts with a drift injected at a known
part (trainer/synth_drift.py), played by the replay camera, judged by an engine trained here,
alerts read from a real Mosquitto. Each drift raises its alert, and only its alert, and the alert
clears once the cause is removed."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from edge.config import load_config
from edge.daemon import Daemon
from tests.conftest import TINY_SIZE
from tests.integration.broker import Broker, Received, Subscriber
from tests.integration.conftest import MakeBroker
from trainer.demo_line import STATION, station_config, write_config
from trainer.fit import FitResult
from trainer.synth import SynthConfig
from trainer.synth_drift import Drift, write_run

pytestmark = pytest.mark.integration

PREFIX = "partsight/{site}/{line}/{station}/".format(**STATION)
WARMUP = 200


def monitored_daemon(tmp_path: Path, engine: Path, frames: Path, broker: Broker) -> Daemon:
    data = station_config(
        state_dir=tmp_path / "state",
        engine=engine,
        camera={"kind": "replay", "folder": str(frames), "free_run": True, "loop": False},
        mqtt={"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1},
        pipeline={"deadline_ms": 5000},
    )
    data["monitor"] = {
        "warmup_parts": WARMUP,
        "clear_parts": 50,
        "min_interval_s": 0.0,
        "metrics": {"line_idle": {"enabled": False}},  # a replay may pause under load
    }
    return Daemon(load_config(write_config(tmp_path / "partsight.toml", data)))


def run_to_the_end(daemon: Daemon, limit_s: float = 600.0) -> None:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()))
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), "the replay did not end"
    assert codes == [0]


def alert_events(messages: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages if m.topic == PREFIX + "alert"]


def test_a_dimming_lamp_and_a_defect_step_each_raise_their_alert_and_clear(
    tmp_path: Path, tiny_engine: FitResult, make_broker: MakeBroker
) -> None:
    lamp = Drift.parse("lamp:301-601:0.01")  # 1 % of the light per 50 parts, for 300 parts
    defects = Drift.parse("defects:1001-1301:0.10")  # 2 % → 10 %
    frames = tmp_path / "run"
    write_run(frames, 1700, SynthConfig(size=TINY_SIZE), 3, [lamp, defects], progress=False)
    broker = make_broker()
    scada = Subscriber(broker, [PREFIX + "alert"], name="scada")
    scada.connect()
    daemon = monitored_daemon(tmp_path, tiny_engine.engine, frames, broker)
    run_to_the_end(daemon)
    got = scada.wait_for(lambda m: len(alert_events(m)) >= 4, timeout_s=10)
    events = [(e["event"], e["alert"]["metric"], e["part_id"]) for e in alert_events(got)]
    print("events:", events)
    assert [(kind, metric) for kind, metric, _ in events] == [
        ("raised", "brightness"),
        ("cleared", "brightness"),
        ("raised", "anomaly_rate"),
        ("cleared", "anomaly_rate"),
    ], events
    (_, _, lamp_seen), (_, _, lamp_gone), (_, _, step_seen), (_, _, step_gone) = events
    assert lamp.start < lamp_seen < lamp.end, "the lamp was seen while it dimmed"  # type: ignore[operator]
    assert lamp_gone > lamp.end  # type: ignore[operator]
    assert defects.start < step_seen < defects.end  # type: ignore[operator]
    assert step_gone > defects.end  # type: ignore[operator]
    raised = alert_events(got)[0]["alert"]
    assert raised["direction"] == "down" and raised["message"].startswith("image brightness down")
    print(
        f"delays: lamp {lamp_seen - lamp.start + 1} parts, defects {step_seen - defects.start + 1} "
        f"parts; cleared {lamp_gone - lamp.end + 1} and {step_gone - defects.end + 1} parts after"  # type: ignore[operator]
    )
    assert daemon.monitor is not None and daemon.monitor.counters()["dropped"] == 0
