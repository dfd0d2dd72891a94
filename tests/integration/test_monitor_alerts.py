"""The monitor's alerts through the real outbox, publisher and a real Mosquitto: raised while
the broker is up they arrive at once; raised while it is down (the daemon restarted meanwhile)
they arrive when it is back, in order; the restarted daemon publishes the active set again,
retained for whoever connects later."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.config.monitor import MonitorConfig
from edge.daemon.monitoring import MonitorWorker
from edge.monitor import Monitor, StationSample
from edge.mqtt import MqttPublisher, Outbox
from tests.edge.monitor_stream import Line, parts
from tests.integration.broker import Broker, Received, Subscriber
from tests.integration.conftest import MakeBroker
from tests.mqtt_config import mqtt_config, station

pytestmark = pytest.mark.integration

SITE, LINE_NAME, STATION = "plant", "line-2", "cam-1"
PREFIX = f"partsight/{SITE}/{LINE_NAME}/{STATION}/"
LINE = Line()


class Station:
    """A publisher on an outbox and a monitor worker, as the daemon wires them."""

    def __init__(self, broker: Broker, tmp_path: Path) -> None:
        self.outbox = Outbox(tmp_path / "outbox.sqlite")
        config = mqtt_config(broker.host, broker.port, reconnect_min_s=0.1, reconnect_max_s=0.3)
        self.publisher = MqttPublisher(config, station(SITE, LINE_NAME, STATION), self.outbox)
        self.publisher.start()
        config = MonitorConfig.model_validate(
            {
                "state_file": tmp_path / "monitor-state.json",
                "warmup_parts": 200,
                "clear_parts": 30,
                "min_interval_s": 0.0,
                "snapshot_s": 0.5,
                "metrics": {
                    "line_idle": {"enabled": False},  # the parts' clock is not the test's
                    "outbox_depth": {"high": 3.0, "low": 0.0},
                },
            }
        )
        self.stop_event = threading.Event()
        self.failures: list[BaseException] = []
        self.worker = MonitorWorker(
            config=config,
            monitor=Monitor(config, engine="tiny@0.1.0#abc"),
            station=STATION,
            publish=lambda topic, payload, retain: self.publisher.publish(
                topic, payload, qos=1, retain=retain, durable=True
            ),
            sample=lambda: StationSample(time_s=time.monotonic(), outbox_depth=len(self.outbox)),
            upstream_done=lambda: True,
            stop=self.stop_event,
            on_fatal=lambda _name, exc: self.failures.append(exc),
        )
        self.worker.start()

    def offer(self, payloads: Any) -> None:
        for payload in payloads:
            self.worker.offer(payload)
        deadline = time.monotonic() + 30
        while self.worker.counters()["queued"]:
            assert time.monotonic() < deadline, "the monitor did not keep up"
            time.sleep(0.01)

    def close(self) -> None:
        self.stop_event.set()
        assert self.worker.join(10.0)
        self.publisher.stop(flush_timeout_s=0.5)
        self.outbox.close()
        assert self.failures == []


def events(messages: list[Received]) -> list[tuple[str, str]]:
    rows = [json.loads(m.payload) for m in messages if m.topic == PREFIX + "alert"]
    return [(r["event"], r["alert"]["metric"]) for r in rows]


def active(messages: list[Received]) -> list[list[str]]:
    rows = [json.loads(m.payload) for m in messages if m.topic == PREFIX + "alert/active"]
    return [[a["metric"] for a in r["active"]] for r in rows]


def test_alerts_survive_a_broker_outage_and_a_restart_in_order(
    tmp_path: Path, make_broker: MakeBroker
) -> None:
    broker = make_broker()
    scada = Subscriber(broker, [PREFIX + "alert", PREFIX + "alert/active"], name="scada")
    scada.connect()
    rng = np.random.default_rng(0)
    station = Station(broker, tmp_path)
    try:
        station.offer(parts(LINE, 1, 300, rng))
        station.offer(parts(replace(LINE, pose=(104.0, 80.0, 0.0)), 301, 60, rng))
        # The event and the active set are two messages: wait for both (either may trail).
        got = scada.wait_for(
            lambda m: ("raised", "pose_x") in events(m) and active(m)[-1:] == [["pose_x"]]
        )
        assert active(got)[-1] == ["pose_x"]
        assert events(got) == [("raised", "pose_x")], "raised at once while the broker is up"

        broker.stop()  # the broker goes away; the line goes on
        station.offer(parts(LINE, 361, 200, rng))  # the fixture is fixed: pose_x clears
        station.offer(parts(replace(LINE, brightness=0.36), 561, 60, rng))  # the lamp dims
        deadline = time.monotonic() + 10
        while "outbox_depth" not in [a.metric for a in station.worker.monitor.active()]:
            assert time.monotonic() < deadline, "the outbox depth was not noticed"
            time.sleep(0.1)
    finally:
        station.close()  # the daemon restarts while the broker is down: all of it in the outbox

    broker.start()
    scada.connect()
    again = Station(broker, tmp_path)  # restores the state, sends the backlog, then the set
    try:
        # Again two messages: the last event and the active set after it; wait for both.
        got = scada.wait_for(
            lambda m: (
                ("cleared", "outbox_depth") in events(m)
                and len(active(m)) >= 6
                and active(m)[-1] == ["brightness"]
            ),
            timeout_s=30,
        )
        # the outage's events, in the order they happened, then the outbox drains and clears
        assert events(got) == [
            ("raised", "pose_x"),
            ("cleared", "pose_x"),
            ("raised", "brightness"),
            ("raised", "outbox_depth"),
            ("cleared", "outbox_depth"),
        ], events(got)
        assert active(got)[-1] == ["brightness"]
        late = Subscriber(broker, [PREFIX + "alert/active"], name="late-reader")
        late.connect()
        retained = late.wait_for(lambda m: bool(m))
        assert [m.retain for m in retained] == [True]
        assert active(retained) == [["brightness"]]
        late.disconnect()
    finally:
        again.close()
        scada.disconnect()
