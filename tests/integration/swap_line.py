"""A station that runs the engine store, as `partsight run --config` starts it, on the replay
camera, publishing to a real Mosquitto: what tests/integration/test_hot_swap.py checks and
bench/bench_engine_swap.py measures.

    line = SwapLine.start(folder, engine_dir, frames, broker, rate_hz=40.0)
    answer = line.activate("tiny", "0.2.0")          # cmd/engine/activate, waits for the answer
    line.rollback_and_reload()                       # `partsight engine rollback`, then SIGHUP
    code = line.stop()                               # SIGTERM; every result then arrives
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.bundle import load_bundle
from edge.config import load_config
from edge.store import EngineStore
from tests.engine_files import (
    Signer,
    engine_file,
    flip_byte,
    make_signer,
    store_station,
    trusted_folder,
)
from tests.integration.broker import Broker, Received, Subscriber
from trainer.station_files import STATION, daemon_command, daemon_env

PREFIX = "partsight/{site}/{line}/{station}/".format(**STATION)
VERSIONS = ("0.1.0", "0.2.0")  # installed, the first one active
TAMPERED = "0.3.0"  # installed, then a byte of its model changed on disk


def prepare_store(folder: Path, engine: Path) -> tuple[Signer, Path]:
    """Keys, and a store under folder/state holding the engine in VERSIONS and TAMPERED."""
    signer = make_signer(folder / "keys")
    trusted = trusted_folder(folder / "trusted", signer)
    config = store_station(folder, trusted)
    store = EngineStore(load_config(config).engine_store_dir)
    name = load_bundle(engine).manifest.name
    for version in (*VERSIONS, TAMPERED):
        file = engine_file(engine, signer, folder / "files", version)
        command = ["engine", "install", str(file), "--config", str(config)]
        if version == VERSIONS[0]:
            command.append("--activate")
        _partsight(command)
    model = store.root / name / TAMPERED / "bundle" / "model.onnx"
    model.write_bytes(flip_byte(model.read_bytes()))
    return signer, trusted


@dataclass(frozen=True)
class Answer:
    """An answer on cmd/response, with when its request was sent and when it arrived
    (monotonic ns, the daemon's clock too)."""

    payload: dict[str, Any]
    sent_ns: int
    arrived_ns: int


@dataclass
class SwapLine:
    config: Path
    broker: Broker
    subscriber: Subscriber
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(
        cls, folder: Path, trusted: Path, frames: Path, broker: Broker, rate_hz: float
    ) -> SwapLine:
        config = store_station(
            folder,
            trusted,
            camera={"kind": "replay", "folder": str(frames), "loop": True, "rate_hz": rate_hz},
            mqtt={"host": broker.host, "port": broker.port, "keepalive_s": 5},
            pipeline={"deadline_ms": 2000},
        )
        subscriber = Subscriber(broker, [PREFIX + "#"])
        subscriber.connect()
        log = folder / "daemon.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                daemon_command(config), env=daemon_env(), stdout=out, stderr=subprocess.STDOUT
            )
        return cls(config, broker, subscriber, process, log)

    # -- what arrives ---------------------------------------------------------------------------

    def on(self, suffix: str) -> list[Received]:
        return [m for m in self.subscriber.messages if m.topic == PREFIX + suffix]

    def results(self) -> list[dict[str, Any]]:
        """Every result in arrival order, duplicates included."""
        return [json.loads(m.payload) for m in self.on("result")]

    def answers(self) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.on("cmd/response")]

    def wait(self, done: Any, what: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon exited while waiting for {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.tail()}")
            time.sleep(0.02)

    def wait_parts(self, count: int, after_ns: int = 0) -> None:
        """Until the results of `count` parts triggered at or after `after_ns` and judged by an
        engine (not rejected as overload on a busy machine) have arrived."""

        def judged() -> int:
            return sum(
                r["trigger_monotonic_ns"] >= after_ns and r["engine"] is not None
                for r in self.results()
            )

        self.wait(lambda: judged() >= count, f"{count} judged results")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    # -- what we do -----------------------------------------------------------------------------

    def activate(self, name: str, version: str) -> Answer:
        """Publish cmd/engine/activate and wait for its answer."""
        request_id = uuid.uuid4().hex
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"scada-{request_id}")
        client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        try:
            payload = json.dumps({"name": name, "version": version, "request_id": request_id})
            sent_ns = time.monotonic_ns()
            client.publish(PREFIX + "cmd/engine/activate", payload, qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        return self._answer(sent_ns, lambda a: a["request_id"] == request_id)

    def rollback_and_reload(self) -> Answer:
        """`partsight engine rollback`, then `systemctl reload` (SIGHUP); wait for the answer."""
        _partsight(["engine", "rollback", "--config", str(self.config)])
        seen = len(self.on("cmd/response"))
        sent_ns = time.monotonic_ns()
        self.process.send_signal(signal.SIGHUP)
        return self._answer(sent_ns, lambda a: a["command"] == "reload", after=seen)

    def _answer(self, sent_ns: int, match: Any, after: int = 0) -> Answer:
        def found() -> Received | None:
            later = self.on("cmd/response")[after:]
            return next((m for m in later if match(json.loads(m.payload))), None)

        self.wait(lambda: found() is not None, "the answer")
        message = found()
        assert message is not None
        return Answer(json.loads(message.payload), sent_ns, round(message.at * 1e9))

    def stop(self) -> tuple[int, int]:
        """SIGTERM; (exit code, parts handed out), after every result has arrived."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        parts = int(self.log.read_text().split("acquisition stopped after ")[1].split()[0])
        self.wait(lambda: len({r["part_id"] for r in self.results()}) >= parts, "every result", 20)
        return code, parts

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.subscriber.disconnect()


def _partsight(args: list[str]) -> None:
    """`partsight ARGS` (in this process: the store is shared through its folder and lock)."""
    from edge.cli import main

    code = main(args)
    if code != 0:
        raise RuntimeError(f"partsight {' '.join(args)} exited with {code}")
