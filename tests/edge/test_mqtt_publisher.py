"""The publisher without a broker: settings, secrets, back-off, and a network that never holds up
`publish`. Tests against a real Mosquitto are in tests/integration/test_mqtt_broker.py."""

from __future__ import annotations

import logging
import math
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.mqtt import Backoff, MqttConfigError, MqttPublisher, MqttSettings, Outbox
from edge.mqtt.client import tls_context
from edge.mqtt.publisher import encode_payload

SECRET = "s3cr3t-Hunter2-do-not-log"


def settings(port: int, /, **changes: object) -> MqttSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "site": "s",
        "line": "l",
        "station": "st",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2,
        "connect_timeout_s": 0.5,
    }
    return MqttSettings(**(base | changes))  # type: ignore[arg-type]


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
    publisher = MqttPublisher(settings(port, connect_timeout_s=2.0), outbox)
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
    publisher = MqttPublisher(settings(closed_port), outbox)
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
        ({"station": "a/b"}, "station"),
        ({"site": ""}, "site"),
        ({"line": "#"}, "line"),
        ({"port": 0}, "port"),
        ({"host": ""}, "host"),
        ({"max_inflight": 0}, "max_inflight"),
        ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "reconnect"),
        ({"password_file": Path("/x")}, "username"),
        ({"username": "u", "password_file": Path("/x"), "password_credential": "x"}, "either"),
        ({"tls_ca_file": Path("/ca.pem")}, "tls"),
        ({"tls": True, "tls_cert_file": Path("/c.pem")}, "go together"),
    ],
)
def test_settings_are_checked(changes: dict[str, object], match: str) -> None:
    with pytest.raises(MqttConfigError, match=match):
        settings(1883, **changes)


def test_default_client_id_names_the_station() -> None:
    assert settings(1883).effective_client_id == "partsight-s-l-st"
    assert settings(1883, client_id="x").effective_client_id == "x"


def test_password_from_a_file(tmp_path: Path, outbox: Outbox, closed_port: int) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text(SECRET + "\n")
    s = settings(closed_port, username="station", password_file=secret)
    assert MqttPublisher(s, outbox)._password == SECRET
    assert SECRET not in repr(s)


def test_password_from_a_systemd_credential(
    tmp_path: Path, outbox: Outbox, closed_port: int
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt").write_text(SECRET)
    s = settings(closed_port, username="station", password_credential="mqtt")
    publisher = MqttPublisher(s, outbox, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert publisher._password == SECRET
    with pytest.raises(MqttConfigError, match="CREDENTIALS_DIRECTORY"):
        MqttPublisher(s, outbox, environ={})
    with pytest.raises(MqttConfigError, match="plain file name"):
        bad = settings(closed_port, username="station", password_credential="../mqtt")
        MqttPublisher(bad, outbox, environ={"CREDENTIALS_DIRECTORY": str(creds)})


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_password_file_is_an_error(
    tmp_path: Path, outbox: Outbox, content: str | None
) -> None:
    secret = tmp_path / "pw"
    if content is not None:
        secret.write_text(content)
    s = settings(1883, username="u", password_file=secret)
    with pytest.raises(MqttConfigError, match=str(secret)):
        MqttPublisher(s, outbox)


def test_the_password_is_never_logged(
    tmp_path: Path, outbox: Outbox, silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Through connect attempts, a CONNACK timeout, paho's debug log and a stop."""
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "pw"
    secret.write_text(SECRET)
    s = settings(silent_port, username="station", password_file=secret, connect_timeout_s=0.2)
    publisher = MqttPublisher(s, outbox)
    publisher.start()
    publisher.publish("result", {"part_id": 1})
    time.sleep(0.6)
    publisher.stop(flush_timeout_s=0.1)
    assert "did not accept the connection" in caplog.text  # the log did run
    assert "Sending CONNECT" in caplog.text  # including paho's packet log
    assert SECRET not in caplog.text
    assert SECRET not in repr(publisher.counters())


def test_tls_files_are_checked_at_construction(tmp_path: Path, outbox: Outbox) -> None:
    s = settings(8883, tls=True, tls_ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(MqttConfigError, match="missing-ca.pem"):
        MqttPublisher(s, outbox)
    assert tls_context(None, None, None).check_hostname  # system CAs, verification on


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
