"""The publisher against a real Mosquitto: order, status and last will, outages, credentials,
TLS, and the field's identity and size troubles: two stations with one client id (a take-over),
two stations with one set of names (a twin), a message bigger than the broker takes, a message
the broker refuses. Each test starts its own broker on a free loopback port
(tests/integration/broker.py)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from edge.config.mqtt import MqttConfig
from edge.mqtt import MqttPublisher, Outbox, Topics, paho_client
from tests.integration.broker import Broker, MakeBroker, Received, Subscriber
from tests.mqtt_config import mqtt_config, station
from tests.waiting import eventually

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOPICS = Topics("plant", "line1", "st-7")


STATION = station(TOPICS.site, TOPICS.line, TOPICS.station)


def settings(broker: Broker, **changes: object) -> MqttConfig:
    return mqtt_config(broker.host, broker.port, **({"max_inflight": 20} | changes))


def make_publisher(broker: Broker, outbox: Outbox, **changes: object) -> MqttPublisher:
    return MqttPublisher(settings(broker, **changes), STATION, outbox)


def states(payloads: list[bytes]) -> list[str]:
    """The `state` of each status payload (JSON, edge/mqtt/status.py)."""
    return [json.loads(p)["state"] for p in payloads]


def payloads_on(messages: list[Received], topic: str) -> list[bytes]:
    return [m.payload for m in messages if m.topic == topic]


def result(part_id: int) -> dict[str, object]:
    return {"station": TOPICS.station, "part_id": part_id, "verdict": "OK"}


def part_ids(messages: list[Received]) -> list[int]:
    return [json.loads(m.payload)["part_id"] for m in messages if m.topic == TOPICS.result]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(tmp_path / "outbox.db") as box:  # the production setting: fsync on every put
        yield box


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    sub = Subscriber(broker, [TOPICS.prefix + "#"])
    sub.connect()
    yield sub
    sub.disconnect()


class Gate:
    """A client factory that refuses to connect while closed, so a test can bring its
    subscriber back after a broker restart before the publisher reconnects."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.open.set()

    def __call__(self, client_id: str, protocol: MQTTProtocolVersion) -> mqtt.Client:
        if not self.open.is_set():
            raise ConnectionRefusedError("held back by the test")
        return paho_client(client_id, protocol)


def test_results_arrive_in_order_exactly_once(
    broker: Broker, subscriber: Subscriber, outbox: Outbox
) -> None:
    publisher = make_publisher(broker, outbox)
    publisher.start()
    for part in range(60):
        publisher.publish("result", result(part))
    got = subscriber.wait_for(lambda m: len(part_ids(m)) >= 60)
    assert eventually(lambda: len(outbox) == 0)
    publisher.stop()
    assert part_ids(got) == list(range(60))
    counters = publisher.counters()
    assert (counters.sent, counters.acked, counters.resent) == (60, 60, 0)


def test_status_online_retained_then_stopped_on_a_clean_stop(
    broker: Broker, subscriber: Subscriber, outbox: Outbox
) -> None:
    publisher = make_publisher(broker, outbox)
    publisher.start()
    assert eventually(lambda: publisher.connected)
    publisher.publish("engine", {"name": "bracket", "version": "1.0.0"}, retain=True, durable=False)
    publisher.publish("metrics", {"parts": 0}, qos=0, durable=False)
    # The broker has both before the late client subscribes (they travel on another connection).
    subscriber.wait_for(lambda m: {TOPICS.engine, TOPICS.metrics} <= {x.topic for x in m})

    late = Subscriber(broker, [TOPICS.status, TOPICS.engine])
    late.connect()
    seen = late.wait_for(lambda m: len(m) >= 2)
    assert {(m.topic, m.retain) for m in seen} == {(TOPICS.status, True), (TOPICS.engine, True)}
    engine = [m.payload for m in seen if m.topic == TOPICS.engine]
    assert engine == [b'{"name":"bracket","version":"1.0.0"}']
    online = json.loads(next(m.payload for m in seen if m.topic == TOPICS.status))
    assert online["schema"] == "partsight.status/1" and online["state"] == "online"
    assert online["client_id"] == "test-station" and online["station"] == TOPICS.station
    assert online["health"]["mqtt"]["state"] == "up"
    late.disconnect()

    publisher.stop()
    assert not publisher.connected
    statuses = subscriber.wait_for(lambda m: "stopped" in states(payloads_on(m, TOPICS.status)))
    # "stopped" and never "offline": a clean stop cancels the last will.
    assert states(payloads_on(statuses, TOPICS.status)) == ["online", "stopped"]
    assert subscriber.payloads(TOPICS.metrics) == [b'{"parts":0}']
    after = Subscriber(broker, [TOPICS.status])
    after.connect()
    retained = after.wait_for(bool, 5)
    assert [(states([m.payload]), m.retain) for m in retained] == [(["stopped"], True)]
    after.disconnect()


DAEMON = """
import sys, time
from edge.mqtt import MqttPublisher, Outbox
from tests.mqtt_config import mqtt_config, station
port, db = int(sys.argv[1]), sys.argv[2]
config = mqtt_config("127.0.0.1", port)
publisher = MqttPublisher(config, station("plant", "line1", "st-7"), Outbox(db))
publisher.start()
while not publisher.connected:
    time.sleep(0.01)
print("connected", flush=True)
time.sleep(60)
"""


def test_last_will_offline_when_the_daemon_is_killed(
    broker: Broker, subscriber: Subscriber, tmp_path: Path
) -> None:
    daemon = subprocess.Popen(
        [sys.executable, "-c", DAEMON, str(broker.port), str(tmp_path / "o.db")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        assert daemon.stdout.readline().strip() == "connected"
        assert states([subscriber.wait_for(lambda m: len(m) >= 1, 5)[0].payload]) == ["online"]
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    statuses = subscriber.wait_for(lambda m: len(m) >= 2, 5)
    assert states([m.payload for m in statuses]) == ["online", "offline"]
    will = json.loads(statuses[1].payload)
    assert (will["client_id"], will["health"]) == ("test-station", {})
    after = Subscriber(broker, [TOPICS.status])
    after.connect()
    assert [(states([m.payload]), m.retain) for m in after.wait_for(bool, 5)] == [
        (["offline"], True)
    ]
    after.disconnect()


def test_nothing_is_lost_when_the_broker_dies_mid_run(
    broker: Broker, subscriber: Subscriber, outbox: Outbox
) -> None:
    """THE acceptance test. 600 results are published at a steady pace. Mid-run the broker
    freezes (SIGSTOP: it reads, acknowledges and delivers nothing, so the publisher's window of
    20 fills up with messages the broker will never process), stays down, and is then killed
    and started again empty (persistence is off). The subscriber is back before the publisher is
    let in. Every result must arrive, in order once duplicates are dropped, with at most the
    window's worth of duplicates; the 20 that died in the frozen broker can only have arrived
    because the publisher resent them."""
    total, window = 600, 20
    gate = Gate()
    publisher = MqttPublisher(
        settings(broker, max_inflight=window), STATION, outbox, client_factory=gate
    )
    publisher.start()
    assert eventually(lambda: publisher.connected)

    slowest = [0.0]

    def produce() -> None:  # a steady line: one part every 7.5 ms, ~4.5 s in all
        start = time.monotonic()
        for part in range(total):
            time.sleep(max(start + part * 0.0075 - time.monotonic(), 0.0))
            t0 = time.monotonic()
            publisher.publish("result", result(part))
            slowest[0] = max(slowest[0], time.monotonic() - t0)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert subscriber.wait_for(lambda m: len(part_ids(m)) >= 100, 10)
        gate.open.clear()
        broker.pause()
        assert eventually(lambda: publisher.counters().inflight == window, 5)
        time.sleep(2.0)  # frozen, then dead, then restarted: ~3 s without a broker in all
        broker.kill()
        assert eventually(lambda: not publisher.connected, 5)
        time.sleep(1.0)
        held = len(outbox)
        broker.start()
        subscriber.connect()
        gate.open.set()
    finally:
        gate.open.set()
        producer.join(30)

    got = subscriber.wait_for(lambda m: len(set(part_ids(m))) >= total, 20)
    assert eventually(lambda: len(outbox) == 0 and publisher.counters().inflight == 0)
    publisher.stop()

    ids = part_ids(got)
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == list(range(total)), "a result is missing or out of order"
    duplicates = len(ids) - total
    assert 0 <= duplicates <= window
    counters = publisher.counters()
    assert counters.resent == window  # exactly the window swallowed by the frozen broker
    assert counters.acked == total
    assert counters.sent == total + counters.resent
    assert counters.reconnects >= 1
    assert held > window  # the outage's results waited in the outbox
    # The broker was gone for ~3 s: a publish that waited on it would show.
    assert slowest[0] < 1.0, f"a publish took {slowest[0]:.2f} s while the broker was down"


def test_reconnects_after_a_clean_broker_restart(
    broker: Broker, subscriber: Subscriber, outbox: Outbox
) -> None:
    """The broker restarts empty: "online" and the latest retained engine state come back,
    including one set while the broker was away."""
    gate = Gate()
    publisher = MqttPublisher(settings(broker), STATION, outbox, client_factory=gate)
    publisher.start()
    assert eventually(lambda: publisher.connected)
    publisher.publish("engine", b"bracket 1.0.0", retain=True, durable=False)
    publisher.publish("result", result(0))
    assert subscriber.wait_for(lambda m: 0 in part_ids(m), 5)

    gate.open.clear()
    broker.stop()
    assert eventually(lambda: not publisher.connected, 5)
    publisher.publish("result", result(1))  # while the broker is away
    publisher.publish("engine", b"bracket 1.1.0", retain=True, durable=False)
    assert publisher.publish("heatmap", b"png", qos=0, durable=False) is None
    broker.start()
    subscriber.connect()
    gate.open.set()

    got = subscriber.wait_for(lambda m: 1 in part_ids(m), 10)
    publisher.stop()
    assert part_ids(got) == [0, 1]
    # Once per connection (the broker may also have sent the will as it shut down).
    assert states(subscriber.payloads(TOPICS.status)).count("online") == 2
    assert subscriber.payloads(TOPICS.engine) == [b"bracket 1.0.0", b"bracket 1.1.0"]
    counters = publisher.counters()
    assert counters.reconnects == 1 and counters.dropped_nondurable == 1


def test_stop_is_bounded_when_the_broker_hangs(
    broker: Broker, subscriber: Subscriber, outbox: Outbox
) -> None:
    """A frozen broker acknowledges nothing: stop() gives up after its flush timeout and the
    unacknowledged results stay in the outbox for the next start."""
    publisher = make_publisher(broker, outbox)
    publisher.start()
    assert eventually(lambda: publisher.connected)
    broker.pause()
    for part in range(30):
        publisher.publish("result", result(part))
    assert eventually(lambda: publisher.counters().inflight == 20, 5)
    t0 = time.monotonic()
    publisher.stop(flush_timeout_s=0.5)
    took = time.monotonic() - t0
    assert took < 4.0, f"stop took {took:.1f} s"
    assert len(outbox) == 30
    assert publisher.counters().acked == 0


SECRET = "pa55-Word-never-in-logs"


@pytest.fixture
def password_broker(make_broker: MakeBroker, tmp_path: Path) -> Broker:
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.skip("mosquitto_passwd is not installed")
    pwfile = tmp_path / "passwords"
    subprocess.run([passwd, "-c", "-b", str(pwfile), "station", SECRET], check=True)
    return make_broker(allow_anonymous=False, extra_config=[f"password_file {pwfile}"])


def test_password_from_systemd_credentials_against_an_authenticating_broker(
    password_broker: Broker, outbox: Outbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt-password").write_text(SECRET + "\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    good = mqtt_config(
        password_broker.host,
        password_broker.port,
        environ=env,
        username="station",
        password_credential="mqtt-password",
    )
    sub = Subscriber(password_broker, [TOPICS.result])
    with pytest.raises(ConnectionRefusedError):  # anonymous is refused: the broker checks
        sub.connect()

    publisher = MqttPublisher(good, STATION, outbox)
    publisher.start()
    assert eventually(lambda: publisher.connected, 5)
    publisher.publish("result", result(5))
    assert eventually(lambda: len(outbox) == 0, 5)
    publisher.stop()

    (tmp_path / "wrong").write_text("not-the-password")
    bad = settings(password_broker, username="station", password_file=str(tmp_path / "wrong"))
    refused = MqttPublisher(bad, STATION, outbox)
    refused.start()
    assert eventually(lambda: refused.counters().connect_failures >= 1, 5)
    refused.stop()
    assert not refused.counters().connected
    assert "did not accept the connection" in caplog.text
    assert SECRET not in caplog.text and "not-the-password" not in caplog.text


def _write_pki(directory: Path) -> dict[str, Path]:
    """A CA, a broker certificate for 127.0.0.1 and a client certificate, as PEM files."""
    pytest.importorskip("cryptography", reason="the cryptography package generates test certs")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        ca_key: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer.subject if issuer else name(subject))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False,
            ).add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    files: dict[str, Path] = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("PartSight test CA", ca_key, None, ca_key)
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        crt = cert(f"partsight-test-{role}", key, ca, ca_key)
        files[f"{role}_key"] = directory / f"{role}.key"
        files[f"{role}_key"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        files[f"{role}_cert"] = directory / f"{role}.crt"
        files[f"{role}_cert"].write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    files["ca"] = directory / "ca.crt"
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


def test_tls_with_a_client_certificate(
    make_broker: MakeBroker, outbox: Outbox, tmp_path: Path
) -> None:
    pki = _write_pki(tmp_path)
    tls_broker = make_broker(
        extra_config=[
            f"cafile {pki['ca']}",
            f"certfile {pki['server_cert']}",
            f"keyfile {pki['server_key']}",
            "require_certificate true",
        ]
    )
    s = settings(
        tls_broker,
        tls=True,
        tls_ca_file=pki["ca"],
        tls_cert_file=pki["client_cert"],
        tls_key_file=pki["client_key"],
    )
    publisher = MqttPublisher(s, STATION, outbox)
    publisher.start()
    assert eventually(lambda: publisher.connected, 5), tls_broker.log()
    publisher.publish("result", result(1))
    assert eventually(lambda: len(outbox) == 0, 5)
    publisher.stop()

    # Without a client certificate the broker refuses the handshake.
    anonymous = settings(tls_broker, tls=True, tls_ca_file=pki["ca"])
    refused = MqttPublisher(anonymous, STATION, outbox)
    refused.start()
    assert eventually(lambda: refused.counters().connect_failures >= 1, 5)
    refused.stop(flush_timeout_s=0.1)
    assert refused.counters().reconnects == 0 and not refused.counters().connected


# -- what the broker will never take ---------------------------------------------------------------


def big_result(part: int, size: int) -> dict[str, object]:
    return {**result(part), "blob": "x" * size}


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_message_bigger_than_the_broker_takes_is_set_aside_and_the_rest_flows(
    make_broker: MakeBroker,
    outbox: Outbox,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Mosquitto takes packets up to 2048 bytes. MQTT 5: the publisher learns it from the
    CONNACK; MQTT 3.1.1 cannot say it, so it is configured. The oversized result, in the middle
    of 40, is never sent (a broker would drop the connection for it, again and again): it is
    set aside on disk, counted, logged once, and the 39 behind and before it arrive in order on
    the first connection."""
    caplog.set_level(logging.INFO)
    broker = make_broker(extra_config=["max_packet_size 2048"])
    sub = Subscriber(broker, [TOPICS.prefix + "#"])
    sub.connect()
    limit = {} if protocol == "5" else {"max_packet_size": 2048}
    publisher = make_publisher(broker, outbox, protocol=protocol, **limit)
    publisher.start()
    try:
        ids = [
            publisher.publish("result", big_result(part, 5000) if part == 12 else result(part))
            for part in range(40)
        ]
        got = sub.wait_for(lambda m: len(part_ids(m)) >= 39, 10)
        assert eventually(lambda: len(outbox) == 0)
        health = publisher.health()
    finally:
        publisher.stop()
        sub.disconnect()
    assert part_ids(got) == [p for p in range(40) if p != 12]
    assert outbox.set_aside_ids() == [ids[12]]
    reason = str(outbox.set_aside_reason(ids[12]))
    assert re.fullmatch(r"(\d+) bytes, more than the broker takes \(2048 bytes\)", reason)
    counters = publisher.counters()
    assert (counters.set_aside, counters.reconnects, counters.acked) == (1, 0, 39)
    assert (health.state, health.lost, health.recent) == ("up", 1, (ids[12],))
    aside = [r for r in caplog.records if "set aside" in r.getMessage()]
    assert len(aside) == 1 and aside[0].levelno == logging.ERROR
    assert f"MQTT message {ids[12]} set aside: " in aside[0].getMessage()
    assert "Packet too large" not in broker.log() and "oversize" not in broker.log()


def test_a_message_the_broker_refuses_for_good_is_set_aside_not_lost(
    make_broker: MakeBroker, tmp_path: Path, outbox: Outbox
) -> None:
    """The broker's ACL lets this station publish results but not alerts. With MQTT 5 its
    PUBACK says "Not authorized": the alert is kept aside (a PUBACK used to delete it), the
    results go on."""
    acl = tmp_path / "acl"
    acl.write_text(
        f"topic read {TOPICS.prefix}#\ntopic write {TOPICS.status}\ntopic write {TOPICS.result}\n"
    )
    broker = make_broker(extra_config=[f"acl_file {acl}"])
    sub = Subscriber(broker, [TOPICS.prefix + "#"])
    sub.connect()
    publisher = make_publisher(broker, outbox)
    publisher.start()
    try:
        first = publisher.publish("result", result(1))
        alert = publisher.publish("alert", {"station": TOPICS.station, "what": "x"})
        last = publisher.publish("result", result(2))
        got = sub.wait_for(lambda m: len(part_ids(m)) >= 2, 10)
        assert eventually(lambda: len(outbox) == 0)
    finally:
        publisher.stop()
        sub.disconnect()
    assert part_ids(got) == [1, 2] and first is not None and last is not None
    assert outbox.set_aside_ids() == [alert]
    assert outbox.set_aside_reason(alert) == "refused by the broker: Not authorized"
    assert publisher.counters().acked == 2


# -- two stations, one identity --------------------------------------------------------------------


def test_two_stations_with_one_client_id_are_reported_as_a_take_over(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A configuration copied to a second station, client id and all: the broker hands the
    connection from one to the other again and again. Each recognises it (3 connections in a
    row closed soon after they were accepted) and says so once, as an error naming the id,
    in health() (which the daemon puts on status and in STATUS)."""
    caplog.set_level(logging.INFO)
    boxes = [Outbox(tmp_path / f"outbox{i}.db") for i in range(2)]
    twins = [make_publisher(broker, box, client_id="partsight-plant-line1-st-7") for box in boxes]
    for twin in twins:
        twin.start()
    try:
        assert eventually(lambda: all(t.health().state == "error" for t in twins), 20)
        details = [t.health().detail for t in twins]
        twins[1].stop(flush_timeout_s=0.5)
        # Alone again, the first one's connection stays up (2.5 s here) and the error clears.
        assert eventually(lambda: twins[0].health().state == "up", 10)
    finally:
        for twin in twins:
            twin.stop(flush_timeout_s=0.5)
        for box in boxes:
            box.close()
    for detail in details:
        assert detail.startswith(
            "MQTT client id 'partsight-plant-line1-st-7' is in use by another client: the broker "
            "closed this connection 3 times in a row"
        )
    said = [r for r in caplog.records if "is in use by another client" in r.getMessage()]
    assert len(said) == 2 and all(r.levelno == logging.ERROR for r in said)
    assert [r for r in caplog.records if "has stayed up: no more take-over" in r.getMessage()]
    assert broker.log().count("already connected, closing old connection") >= 4


def test_a_twin_station_under_the_same_names_is_an_error_on_both_until_one_stops(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two stations with their own client ids but the same site/line/station names publish on
    the same topics, and consumers would merge their parts: each sees the other's online
    status on its own status topic and reports it; when one stops, the other is fine again."""
    caplog.set_level(logging.INFO)
    boxes = [Outbox(tmp_path / f"outbox{i}.db") for i in range(2)]
    first = make_publisher(broker, boxes[0], client_id="station-a")
    second = make_publisher(broker, boxes[1], client_id="station-b")
    first.start()
    try:
        assert eventually(lambda: first.connected, 5)
        second.start()
        assert eventually(lambda: first.health().state == second.health().state == "error", 10)
        assert "as client 'station-b'" in first.health().detail
        assert "as client 'station-a'" in second.health().detail
        late = Subscriber(broker, [TOPICS.status])
        late.connect()
        status = json.loads(late.wait_for(bool, 5)[0].payload)
        late.disconnect()
        assert status["state"] == "degraded" and status["health"]["mqtt"]["state"] == "error"
        second.stop()
        assert eventually(lambda: first.health().state == "up", 5)
    finally:
        first.stop()
        second.stop()
        for box in boxes:
            box.close()
    errors = [r for r in caplog.records if "another station publishes as" in r.getMessage()]
    assert len(errors) == 2 and all(r.levelno == logging.ERROR for r in errors)
