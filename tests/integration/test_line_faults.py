"""The line daemon in the field's faults, end to end on real components: the replay camera, the
tiny engine on ONNX Runtime, a real Mosquitto, a real pymodbus server as the PLC
(tests/integration/plc.py), systemd's notify socket (tests/integration/notify.py).

- A PLC that accepts requests and never answers: the pipeline goes on at its pace (every part
  triggered while the PLC hangs gets its judged result), the parts whose pulse fell in the hang
  are counted and named, the output's state shows on STATUS, `status` and `alert`; a clean stop
  still fires the pulses already scheduled.
- Another client with the daemon's own MQTT client id: a take-over, on STATUS and `status`.
- `partsight run` as systemd starts it: one log line per event, no ERROR on a clean stop.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.config import load_config
from edge.daemon import Daemon
from edge.mqtt import MqttPublisher, Outbox, client_id
from edge.systemd import Notifier
from tests.integration.broker import Broker, Subscriber
from tests.integration.notify import NotifySocket
from tests.integration.plc import Plc
from tests.mqtt_config import mqtt_config, station
from trainer.fit import FitResult
from trainer.station_files import STATION, station_config, write_config

pytestmark = pytest.mark.integration

PREFIX = "partsight/{site}/{line}/{station}/".format(**STATION)
RATE_HZ = 10.0


def frames(dataset: Path, folder: Path, count: int = 20) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, source in enumerate(sorted((dataset / "test").rglob("*.png"))[:count]):
        (folder / f"{i:03d}.png").write_bytes(source.read_bytes())
    return folder


def line_config(
    tmp_path: Path,
    engine: Path,
    replay: Path,
    broker: Broker,
    *,
    reject: dict[str, Any] | None = None,
    loop: bool = True,
    mqtt: dict[str, Any] | None = None,
) -> Path:
    data = station_config(
        state_dir=tmp_path / "state",
        engine=engine,
        camera={"kind": "replay", "folder": str(replay), "rate_hz": RATE_HZ, "loop": loop},
        mqtt={
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            **(mqtt or {}),
        },
        pipeline={"deadline_ms": 500},
    )
    if reject is not None:
        data["reject"] = reject
    return write_config(tmp_path / "partsight.toml", data)


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Subscriber]:
    sub = Subscriber(broker, [PREFIX + "#"])
    sub.connect()
    yield sub
    sub.disconnect()


def payloads(sub: Subscriber, suffix: str) -> list[dict[str, Any]]:
    return [json.loads(p) for p in sub.payloads(PREFIX + suffix)]


def run_in_thread(daemon: Daemon) -> tuple[threading.Thread, list[int]]:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run_forever()), daemon=True)
    thread.start()
    return thread, codes


def wait(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def named_lost(caplog: pytest.LogCaptureFixture) -> set[int]:
    ids: set[int] = set()
    for r in caplog.records:
        found = re.match(r"reject modbus: no reject pulse for part\(s\) ([\d, ]+):", r.getMessage())
        if found:
            ids |= {int(x) for x in found.group(1).split(", ")}
    return ids


def test_a_plc_that_never_answers_costs_the_output_never_the_pipeline(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    broker: Broker,
    watcher: Subscriber,
    plc: Plc,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    reject = {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": plc.port,
        "target": "registers",
        "registers": 10,
        "delay_ms": 700.0,
        "margin_ms": 100.0,
        "max_late_ms": 150.0,  # room for a loaded test machine's scheduling
        "timeout_ms": 300.0,
        "reconnect_min_s": 0.3,
        "reconnect_max_s": 0.6,
    }
    replay = frames(tiny_dataset, tmp_path / "frames")
    config = load_config(line_config(tmp_path, tiny_engine.engine, replay, broker, reject=reject))
    notify = NotifySocket(tmp_path / "notify.sock")
    notifier = Notifier({"NOTIFY_SOCKET": str(notify.path)})
    daemon = Daemon(config, notifier=notifier, status_interval_s=0.5)
    thread, codes = run_in_thread(daemon)
    try:
        wait(lambda: len(payloads(watcher, "result")) >= 30, 60, "30 results")
        hang_start = time.time()
        plc.hang.set()
        time.sleep(3.0)
        plc.hang.clear()
        hang_end = time.time()
        during = len(payloads(watcher, "result"))
        wait(lambda: len(payloads(watcher, "result")) >= during + 30, 30, "30 more results")
    finally:
        plc.hang.clear()
        daemon.request_stop("test")
        thread.join(30)
    assert codes == [0]
    results = payloads(watcher, "result")
    ids = [r["part_id"] for r in results]
    assert ids == list(range(1, len(ids) + 1))

    # The pipeline never waited on the PLC: every part triggered during the hang was judged,
    # in time, at the camera's pace (not one timeout or overload in the whole run).
    def wall(r: dict[str, Any]) -> float:
        stamp = r["trigger_time"].replace("Z", "+00:00")
        from datetime import datetime

        return datetime.fromisoformat(stamp).timestamp()

    hung = [r for r in results if hang_start <= wall(r) < hang_end]
    assert len(hung) >= 0.75 * RATE_HZ * (hang_end - hang_start)
    assert {r["reason"] for r in results} <= {"", "anomaly", "registration"}
    assert max(r["latency_ms"]["total"] for r in hung) < 500.0

    # Each rejected part got exactly one pulse, or is counted and named as lost.
    rejected = {r["part_id"] for r in results if r["verdict"] != "OK"}
    pulsed = [w.part_id for w in plc.register_writes(10)]
    lost = named_lost(caplog)
    assert len(pulsed) == len(set(pulsed)) and not set(pulsed) & lost
    assert set(pulsed) | lost == rejected
    assert daemon.reject.health().lost == len(lost) > 0
    assert len([r for r in caplog.records if "output down" in r.getMessage()]) == 1
    # ... and only parts whose pulse fell in the hang (or the reopening after it) lost it:
    # the ones scheduled when the daemon stopped still fired.
    by_id = {r["part_id"]: r for r in results}
    assert all(hang_start - 1.0 <= wall(by_id[i]) <= hang_end + 1.5 for i in lost)
    last_loop = {i for i in rejected if i > max(ids) - 20}
    assert last_loop and last_loop <= set(pulsed)

    # The output's state on STATUS, on the retained status, and as alerts.
    statuses = notify.statuses()
    down = [s for s in statuses if "reject DOWN (modbus 127.0.0.1" in s]
    assert down and "no answer within 300 ms; rejected parts are not thrown out" in down[0]
    assert f"reject up ({len(lost)} lost)" in [s for s in statuses if "reject up" in s][-1]
    states = [(s["state"], s["health"]["reject"]["state"]) for s in payloads(watcher, "status")]
    assert ("degraded", "down") in states and states[0] == ("online", "up")
    assert states[-1] == ("stopped", "up")
    alerts = [a for a in payloads(watcher, "alert") if a["component"] == "reject"]
    assert alerts[0]["schema"] == "partsight.health/1" and alerts[0]["state"] == "down"
    assert (alerts[-1]["state"], alerts[-1]["lost"]) == ("up", len(lost))
    assert set(alerts[-1]["recent"]) <= lost
    assert len(alerts) <= 2 + 4  # down, up, and new losses at most once a second
    stopped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopped: ")]
    assert stopped and f"reject up ({len(lost)} lost)" in stopped[0]
    notify.close()


def test_another_client_with_the_daemons_client_id_is_a_take_over_on_status(
    tmp_path: Path,
    tiny_engine: FitResult,
    tiny_dataset: Path,
    broker: Broker,
    watcher: Subscriber,
) -> None:
    replay = frames(tiny_dataset, tmp_path / "frames")
    config = load_config(line_config(tmp_path, tiny_engine.engine, replay, broker))
    own_id = client_id(config.mqtt, config.station).value
    assert own_id.startswith("partsight-demo-line-1-station-1-")
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = Daemon(
        config, notifier=Notifier({"NOTIFY_SOCKET": str(notify.path)}), status_interval_s=0.5
    )
    thread, codes = run_in_thread(daemon)
    other_box = Outbox(tmp_path / "other.db")
    other = MqttPublisher(
        mqtt_config(broker.host, broker.port, client_id=own_id),
        station("elsewhere", "line-9", "station-9"),
        other_box,
    )
    try:
        wait(lambda: len(payloads(watcher, "result")) >= 10, 60, "10 results")
        other.start()
        wait(lambda: any("mqtt ERROR" in s for s in notify.statuses()), 30, "the take-over")
        other.stop(flush_timeout_s=0.2)
        # The alert waited in the outbox while the connection kept being taken; it goes out
        # once the other client has gone.
        wait(lambda: payloads(watcher, "alert") != [], 30, "the alert")
    finally:
        other.stop(flush_timeout_s=0.2)
        other_box.close()
        daemon.request_stop("test")
        thread.join(30)
    assert codes == [0]
    said = next(s for s in notify.statuses() if "mqtt ERROR" in s)
    assert f"mqtt ERROR (MQTT client id {own_id!r} is in use by another client" in said
    alerts = payloads(watcher, "alert")
    assert alerts[0]["component"] == "mqtt" and alerts[0]["state"] == "error"
    assert own_id in alerts[0]["detail"]
    notify.close()


def test_partsight_run_logs_each_event_once_and_a_clean_stop_logs_no_error(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path, broker: Broker
) -> None:
    """`partsight run` until the replay ends, as systemd would start it (journald off): every
    line once, in one format, and nothing at ERROR when everything was delivered."""
    replay = frames(tiny_dataset, tmp_path / "frames", count=30)
    path = line_config(tmp_path, tiny_engine.engine, replay, broker, loop=False)
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.splitlines()
    assert done.returncode == 0, done.stderr[-3000:]
    stamped = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) \S+: ")
    assert [line for line in lines if not stamped.match(line)] == []  # one format, no ERROR
    messages = [stamped.sub("", line) for line in lines]
    assert len(messages) == len(set(messages)), "a line was written twice"
    assert sum("MQTT publisher stopped" in m for m in messages) == 1
    with Outbox(load_config(path).mqtt.outbox) as outbox:
        assert len(outbox) == 0  # everything was acknowledged
