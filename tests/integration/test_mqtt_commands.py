"""Commands from SCADA through a real Mosquitto: the publisher hands a station's command
messages to their handler on every connection, and never again a retained copy; and the broker
ACL that README.md documents lets only SCADA publish `cmd/engine/activate`."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.mqtt import MqttPublisher, Outbox, Topics
from tests.integration.broker import Broker, MakeBroker
from tests.mqtt_config import mqtt_config
from tests.mqtt_config import station as station_section
from tests.waiting import eventually

pytestmark = pytest.mark.integration

TOPICS = Topics("plant-1", "line-3", "housing-top")
ACTIVATE = TOPICS.cmd("engine") + "/activate"


def publisher(broker: Broker, outbox: Path, **credentials: object) -> MqttPublisher:
    """A station's publisher; its client id is the outbox's name, so two in one test differ."""
    config = mqtt_config(
        broker.host, broker.port, client_id=f"station-{outbox.stem}", **credentials
    )
    section = station_section(TOPICS.site, TOPICS.line, TOPICS.station)
    return MqttPublisher(config, section, Outbox(outbox))


def send(
    broker: Broker, payload: bytes, *, retain: bool = False, user: str = "", pw: str = ""
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sender-{time.monotonic_ns()}")
    if user:
        client.username_pw_set(user, pw)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(ACTIVATE, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def collecting() -> tuple[list[bytes], Callable[[bytes], None]]:
    got: list[bytes] = []
    lock = threading.Lock()

    def handler(payload: bytes) -> None:
        with lock:
            got.append(payload)

    return got, handler


def test_commands_reach_their_handler_retained_ones_never_again(
    make_broker: MakeBroker, tmp_path: Path
) -> None:
    store = tmp_path / "broker-store"
    store.mkdir()
    broker = make_broker(extra_config=["persistence true", f"persistence_location {store}/"])
    send(broker, b"left retained before the station came", retain=True)
    got, handler = collecting()
    station = publisher(broker, tmp_path / "outbox.sqlite")
    station.subscribe("cmd/engine/activate", handler)
    station.start()
    try:
        assert eventually(lambda: station.connected)
        time.sleep(0.3)  # the retained message comes with the subscription, and is ignored
        send(broker, b"first")
        assert eventually(lambda: got == [b"first"])
        # Published retained while the station listens, it arrives as an ordinary message once;
        # when a new connection subscribes again, the broker's retained copy is ignored.
        send(broker, b"retained now", retain=True)
        assert eventually(lambda: got == [b"first", b"retained now"])
        broker.restart()
        assert eventually(lambda: station.connected)
        time.sleep(0.3)
        send(broker, b"second")
        assert eventually(lambda: got == [b"first", b"retained now", b"second"])
        time.sleep(0.3)
        assert got == [b"first", b"retained now", b"second"]
    finally:
        station.stop(1.0)
    late = publisher(broker, tmp_path / "late.sqlite")
    late.start()
    try:
        with pytest.raises(RuntimeError, match="subscribe before start"):
            late.subscribe("cmd/engine/activate", handler)
    finally:
        late.stop(1.0)


def test_the_documented_acl_lets_only_scada_activate_an_engine(
    make_broker: MakeBroker, tmp_path: Path
) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed (it comes with mosquitto)")
    passwords = tmp_path / "passwd"
    for user in ("housing-top", "scada", "intruder"):
        subprocess.run([tool, "-b", *(["-c"] if user == "housing-top" else []), str(passwords),
                        user, f"{user}-pw"], check=True)  # fmt: skip
    acl = tmp_path / "acl"
    acl.write_text(_documented_acl())
    broker = make_broker(
        allow_anonymous=False, extra_config=[f"password_file {passwords}", f"acl_file {acl}"]
    )
    (tmp_path / "pw").write_text("housing-top-pw\n")
    got, handler = collecting()
    station = publisher(
        broker,
        tmp_path / "outbox.sqlite",
        username="housing-top",
        password_file=str(tmp_path / "pw"),
    )
    station.subscribe("cmd/engine/activate", handler)
    station.start()
    try:
        assert eventually(lambda: station.connected)
        time.sleep(0.3)
        send(broker, json.dumps({"from": "intruder"}).encode(), user="intruder", pw="intruder-pw")
        # the station's own credentials cannot send it a command either
        send(broker, json.dumps({"from": "self"}).encode(), user="housing-top", pw="housing-top-pw")
        send(broker, json.dumps({"from": "scada"}).encode(), user="scada", pw="scada-pw")
        assert eventually(lambda: len(got) == 1)
        time.sleep(0.5)
        assert [json.loads(p)["from"] for p in got] == ["scada"]
    finally:
        station.stop(1.0)


def _documented_acl() -> str:
    """The ACL example in README.md ("Engines on the station"), as written there."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("restrict topics with Mosquitto's ACL file")[1].split("```")[1]
    return block.strip("\n") + "\n"
