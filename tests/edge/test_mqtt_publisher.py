"""The publisher without a broker: its configuration, the client id, secrets, back-off, and a
network that never holds up `publish`. Tests against a real Mosquitto are in
tests/integration/test_mqtt_broker.py."""

from __future__ import annotations

import logging
import math
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.mqtt import Backoff, MqttConfigError, MqttPublisher, Outbox, client_id
from edge.mqtt.client import publish_packet_size, tls_context
from edge.mqtt.publisher import encode_payload
from tests.mqtt_config import mqtt_config, station

SECRET = "s3cr3t-Hunter2-do-not-log"
STATION = station("s", "l", "st")


def publisher_for(port: int, outbox: Outbox, **changes: object) -> MqttPublisher:
    config = mqtt_config("127.0.0.1", port, **({"connect_timeout_s": 0.5} | changes))
    return MqttPublisher(config, STATION, outbox)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on: every connect is refused at once. The socket stays
    bound (without listening) so no other process can take the port meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose TCP handshake succeeds (the kernel's backlog) but that never answers MQTT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    # NORMAL: these tests are about the network, not about fsync (see test_mqtt_outbox.py).
    with Outbox(tmp_path / "outbox.db", synchronous="NORMAL") as box:
        yield box


@pytest.mark.parametrize("port_fixture", ["closed_port", "silent_port"])
def test_publish_never_waits_on_the_network(
    port_fixture: str, outbox: Outbox, request: pytest.FixtureRequest
) -> None:
    port = request.getfixturevalue(port_fixture)
    # A 2 s CONNACK timeout: a publish that waited on the connection would take that long.
    publisher = publisher_for(port, outbox, connect_timeout_s=2.0)
    publisher.start()
    try:
        slowest = 0.0
        start = time.monotonic()
        for part in range(1000):
            t0 = time.monotonic()
            publisher.publish("result", {"station": "st", "part_id": part})
            slowest = max(slowest, time.monotonic() - t0)
        total = time.monotonic() - start
        assert publisher.publish("metrics", {"parts": 1000}, qos=0, durable=False) is None
    finally:
        t0 = time.monotonic()
        publisher.stop(flush_timeout_s=0.5)
        stop_s = time.monotonic() - t0
    counters = publisher.counters()
    assert len(outbox) == 1000
    assert counters.sent == 0 and counters.acked == 0 and not counters.connected
    assert counters.dropped_nondurable == 1
    if port_fixture == "closed_port":
        assert counters.connect_failures >= 1
    # Each publish is one SQLite insert; none waited for the connection (bounds are loose
    # because the test machine is shared).
    assert slowest < 1.0, f"slowest publish took {slowest:.3f} s"
    assert total < 10.0
    assert stop_s < 5.0, f"stop took {stop_s:.1f} s"
    assert [json_part(m.payload) for m in outbox.pending(3)] == [0, 1, 2]


def json_part(payload: bytes) -> int:
    import json

    return int(json.loads(payload)["part_id"])


def test_publish_refuses_what_cannot_work(outbox: Outbox, closed_port: int) -> None:
    publisher = publisher_for(closed_port, outbox)
    with pytest.raises(ValueError, match="durable"):
        publisher.publish("result", b"x", qos=0)
    with pytest.raises(MqttConfigError):
        publisher.publish("result/#", b"x")
    with pytest.raises(ValueError):
        publisher.publish("result", {"score": math.nan})
    assert len(outbox) == 0


def test_encode_payload() -> None:
    assert (
        encode_payload({"a": 1, "b": [1.5, None], "c": "é"})
        == '{"a":1,"b":[1.5,null],"c":"é"}'.encode()
    )
    assert encode_payload(b"\x00\x01") == b"\x00\x01"
    assert encode_payload("online") == b"online"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"max_inflight": 0}, "max_inflight"),
        ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "reconnect"),
        ({"tls_ca_file": __file__}, "tls"),
        ({"tls": True, "tls_cert_file": __file__}, "go together"),
        ({"protocol": "3"}, "protocol"),
        ({"max_packet_size": 10}, "max_packet_size"),
        ({"publish_heatmaps": True}, "not published yet"),
    ],
)
def test_the_section_is_checked_once_when_loaded(changes: dict[str, object], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        mqtt_config("127.0.0.1", 1883, **changes)
    with pytest.raises(ValidationError, match="port"):
        mqtt_config("127.0.0.1", 0)


def test_the_default_client_id_is_unique_to_the_machine_and_stable(tmp_path: Path) -> None:
    """Two stations with copied names: different machines, different client ids; the same
    machine, the same id at every start. No machine id: a random suffix, kept."""
    config = mqtt_config("127.0.0.1", 1883, client_id="")
    one, two = tmp_path / "machine-1", tmp_path / "machine-2"
    one.write_text("3d1219c7c4c5404aaa1f6d2a48adfda4\n")
    two.write_text("0123456789abcdef0123456789abcdef\n")
    first = client_id(config, STATION, machine_id=one)
    assert first.value.startswith("partsight-s-l-st-") and len(first.value) == 25
    assert first.source == str(one)
    assert client_id(config, STATION, machine_id=one) == first
    assert client_id(config, STATION, machine_id=two).value != first.value
    assert "3d1219c7" not in first.value  # the machine id itself is not published

    here = station("s", "l", "st", tmp_path / "state")
    absent = tmp_path / "no-machine-id"
    shown = client_id(config, here, machine_id=absent, create=False)
    assert shown.value == "partsight-s-l-st-<random, created at first start>"
    assert not (tmp_path / "state").exists()  # check-config writes nothing
    made = client_id(config, here, machine_id=absent)
    assert made.source == str(tmp_path / "state" / "mqtt-client-id")
    assert client_id(config, here, machine_id=absent) == made
    assert client_id(config, here, machine_id=absent, create=False) == made
    configured = mqtt_config("127.0.0.1", 1883, client_id="line3-top")
    assert client_id(configured, here, machine_id=one).value == "line3-top"


def test_the_password_is_the_one_the_configuration_read(tmp_path: Path, outbox: Outbox) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text(SECRET + "\n")
    config = mqtt_config("127.0.0.1", 1883, username="station", password_file=str(secret))
    secret.write_text("changed since the configuration was loaded")
    assert MqttPublisher(config, STATION, outbox)._password == SECRET
    assert SECRET not in repr(config)


def test_the_password_is_never_logged(
    tmp_path: Path, outbox: Outbox, silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Through connect attempts, a CONNACK timeout, paho's debug log and a stop."""
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "pw"
    secret.write_text(SECRET)
    publisher = publisher_for(
        silent_port, outbox, username="station", password_file=str(secret), connect_timeout_s=0.2
    )
    publisher.start()
    publisher.publish("result", {"part_id": 1})
    time.sleep(0.6)
    publisher.stop(flush_timeout_s=0.1)
    assert "did not accept the connection" in caplog.text  # the log did run
    assert "Sending CONNECT" in caplog.text  # including paho's packet log
    assert SECRET not in caplog.text
    assert SECRET not in repr(publisher.counters())
    assert publisher.health().state == "down"
    assert "did not accept the connection: no CONNACK in time" in publisher.health().detail


def test_an_unusable_tls_file_is_an_error_at_construction(tmp_path: Path, outbox: Outbox) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    config = mqtt_config("127.0.0.1", 8883, tls=True, tls_ca_file=str(ca))
    with pytest.raises(MqttConfigError, match="ca.pem"):
        MqttPublisher(config, STATION, outbox)
    assert tls_context(None, None, None).check_hostname  # system CAs, verification on


@pytest.mark.parametrize(
    ("topic", "payload", "qos", "v5", "size"),
    [
        ("a/b", 10, 1, True, 1 + 1 + 2 + 3 + 2 + 1 + 10),
        ("a/b", 10, 0, False, 1 + 1 + 2 + 3 + 10),
        ("t", 200, 1, True, 1 + 2 + 2 + 1 + 2 + 1 + 200),  # remaining length > 127: 2 bytes
    ],
)
def test_publish_packet_size(topic: str, payload: int, qos: int, v5: bool, size: int) -> None:
    import paho.mqtt.client as mqtt

    protocol = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    assert publish_packet_size(topic, payload, qos, protocol) == size


def test_backoff_doubles_to_the_cap_with_jitter() -> None:
    backoff = Backoff(0.5, 30.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    bases = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    for delay, base in zip(delays, bases, strict=True):
        assert base * 0.5 <= delay <= base
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.next_delay() <= 0.5
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_a_retained_message_replaced_while_reconnecting_ends_up_the_newest(
    outbox: Outbox, closed_port: int
) -> None:
    """On a new connection the retained messages are sent again from the publisher's copy; an
    engine swap replacing one meanwhile (and sending it itself) must not be overtaken by the
    stale copy, or the broker keeps announcing the old engine."""
    from edge.mqtt.publisher import _Session

    publisher = publisher_for(closed_port, outbox)
    publisher.publish("engine", {"version": "0.1.0"}, retain=True, durable=False)
    sent: list[tuple[str, bytes]] = []

    class Client:
        def publish(self, topic: str, data: bytes, qos: int, retain: bool) -> None:
            sent.append((topic, data))
            if len(sent) == 1:  # the swap lands while the old copy is on its way
                publisher.publish("engine", {"version": "0.2.0"}, retain=True, durable=False)

    publisher._resend_retained(_Session(Client()))  # type: ignore[arg-type]
    assert [encode_payload({"version": v}) for v in ("0.1.0", "0.2.0")] == [d for _, d in sent]
