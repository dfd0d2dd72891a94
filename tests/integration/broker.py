"""A real Mosquitto broker for tests, on a free loopback port, and a recording subscriber.

    broker = Broker(tmp_path)        # picks a free port now; it stays the same across restarts
    broker.start()
    ...
    broker.stop()                    # SIGTERM: a clean broker shutdown
    broker.start()                   # same port, empty state (persistence is off)
    broker.pause(); broker.kill()    # freeze it, then make it vanish mid-conversation

The `broker` and `make_broker` fixtures in conftest.py wrap this and skip the test when the
mosquitto binary is not installed.
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from trainer.station_files import LOOPBACK, free_port, mosquitto_binary

# The type of the `make_broker` fixture: Broker's keyword options, plus start=True.
MakeBroker = Callable[..., "Broker"]


class BrokerError(RuntimeError):
    """The broker did not start or stop as asked; the message ends with its log."""


class Broker:
    """One mosquitto process with a config written to `workdir`.

    `extra_config` lines are appended after the listener line, so listener options such as
    `certfile` or `password_file` apply to it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = LOOPBACK,
        port: int | None = None,
        allow_anonymous: bool = True,
        extra_config: Iterable[str] = (),
        binary: str | None = None,
    ) -> None:
        found = binary or mosquitto_binary()
        if found is None:
            raise BrokerError("mosquitto is not installed")
        self.binary = found
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self._port_chosen = port is None  # ours to change if someone takes it before we start
        self.port = port or free_port(host)
        self.allow_anonymous = allow_anonymous
        self.extra_config = list(extra_config)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout_s: float = 5.0) -> None:
        """Start and wait until the port accepts connections."""
        for _attempt in range(3):
            try:
                self._start(timeout_s)
                break
            except BrokerError:
                # Another process took the free port before mosquitto bound it (tests run in
                # parallel here): pick another, but only before the port was ever handed out.
                if not self._port_chosen or "in use" not in self.log():
                    raise
                self.port = free_port(self.host)
        self._port_chosen = False  # from now on the port is fixed: restarts keep it

    def _start(self, timeout_s: float) -> None:
        if self.running:
            raise BrokerError("broker already running")
        self._write_config()
        log = self.log_path.open("ab")
        offset = log.tell()  # the log is appended across restarts; read only this run's part
        try:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self._proc.returncode}\n{self.log()}")
            # Mosquitto says "running" once its listeners are open. (Probing the port instead
            # could be fooled by another process that took it.)
            with self.log_path.open("rb") as f:
                f.seek(offset)
                if b" running" in f.read():
                    return
            time.sleep(0.01)
        self.kill()
        raise BrokerError(f"mosquitto did not start in {timeout_s} s\n{self.log()}")

    def stop(self, timeout_s: float = 5.0) -> None:
        """A clean shutdown (SIGTERM), as when the broker's host restarts the service."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # in case it was paused
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without closing anything cleanly (also when paused)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing is read, acknowledged or delivered."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def restart(self, timeout_s: float = 5.0) -> None:
        self.stop(timeout_s)
        self.start(timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise BrokerError("broker not running")
        assert self._proc is not None
        os.kill(self._proc.pid, sig)

    def _write_config(self) -> None:
        lines = [
            # Run as whoever runs the tests: as root, mosquitto would otherwise switch to the
            # `mosquitto` user and could not read the files under the test's tmp directory.
            f"user {getpass.getuser()}",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"listener {self.port} {self.host}",
            *self.extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() on arrival


class Subscriber:
    """A paho client that records every message on `topics`. `connect()` blocks until the
    subscription is acknowledged; after a broker restart, call `connect()` again."""

    def __init__(self, broker: Broker, topics: Sequence[str], qos: int = 1, name: str = "") -> None:
        self.broker = broker
        self.topics = list(topics)
        self.qos = qos
        self.client_id = name or f"test-subscriber-{os.getpid()}-{id(self):x}"
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._client: mqtt.Client | None = None

    def connect(self, timeout_s: float = 5.0) -> None:
        """Connect and subscribe; raises ConnectionRefusedError when the broker says no."""
        self.disconnect()
        connack: list[str] = []
        connected = threading.Event()
        subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, reconnect_on_failure=False
        )

        def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
            connack.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        client.on_message = self._on_message
        client.on_subscribe = lambda *_args: subscribed.set()
        client.connect(self.broker.host, self.broker.port, keepalive=30)
        client.loop_start()
        self._client = client
        if not connected.wait(timeout_s):
            self.disconnect()
            raise TimeoutError(f"no CONNACK from the broker in {timeout_s} s")
        if connack != ["Success"]:
            self.disconnect()
            raise ConnectionRefusedError(f"the broker refused the subscriber: {connack}")
        client.subscribe([(topic, self.qos) for topic in self.topics])
        if not subscribed.wait(timeout_s):
            raise TimeoutError(f"no SUBACK from the broker in {timeout_s} s")

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._messages)

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [m.payload for m in self.messages if topic is None or m.topic == topic]

    def wait_for(
        self, done: Callable[[list[Received]], bool], timeout_s: float = 10.0
    ) -> list[Received]:
        """Wait until `done(messages)` holds; return the messages either way."""
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self.messages
            if done(messages) or time.monotonic() >= deadline:
                return messages
            time.sleep(0.01)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(
                Received(msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic())
            )
