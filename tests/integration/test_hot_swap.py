"""A hot swap on the running line: `partsight run` as a subprocess on the replay camera with the
engine store, a real Mosquitto, over 550 parts. SCADA activates an engine changed on disk
(refused: the old one keeps judging), then another version (switched), then a technician rolls
back and reloads (SIGHUP). No part is lost or judged twice, every result names the engine that
was active at its trigger time, and the retained `engine` topic follows. The figures (swap
time, latency around it) come from bench/bench_engine_swap.py, not from here."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.bundle import sha256_file
from tests.integration.broker import Broker, Subscriber
from tests.integration.conftest import MakeBroker
from tests.integration.swap_line import PREFIX, TAMPERED, SwapLine, prepare_store
from trainer.fit import FitResult

pytestmark = pytest.mark.integration

RATE_HZ = 40.0
PER_ENGINE = 150  # parts judged by each engine in turn, at least


@pytest.fixture
def line(
    tmp_path: Path, tiny_engine: FitResult, tiny_dataset: Path, make_broker: MakeBroker
) -> Iterator[SwapLine]:
    _, trusted = prepare_store(tmp_path, tiny_engine.engine)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, image in enumerate(sorted((tiny_dataset / "test").rglob("*.png"))[:20]):
        shutil.copy(image, frames / f"{i:03d}.png")
    running = SwapLine.start(tmp_path, trusted, frames, make_broker(), RATE_HZ)
    yield running
    running.close()


def test_a_hot_swap_during_500_parts_loses_none_and_names_the_right_engine(
    line: SwapLine, tiny_engine: FitResult
) -> None:
    model = sha256_file(tiny_engine.engine / "model.onnx")
    line.wait_parts(100)
    refused = line.activate("tiny", TAMPERED).payload
    assert refused["ok"] is False
    assert refused["error"].endswith("model.onnx does not match its sha256 (tampered?)")
    assert refused["engine"] == {"name": "tiny", "version": "0.1.0", "model_sha256": model}

    to_v2 = line.activate("tiny", "0.2.0").payload
    assert to_v2["ok"] is True and to_v2["error"] is None
    assert to_v2["engine"]["version"] == "0.2.0"
    switch = to_v2["active_since_monotonic_ns"]
    line.wait_parts(PER_ENGINE, after_ns=switch)

    back = line.rollback_and_reload().payload
    assert back["ok"] is True and back["engine"]["version"] == "0.1.0"
    switch_back = back["active_since_monotonic_ns"]
    line.wait_parts(PER_ENGINE, after_ns=switch_back)
    line.wait_parts(520)
    code, parts = line.stop()
    assert code == 0, line.tail()

    results = line.results()
    ids = [r["part_id"] for r in results]
    assert parts >= 500
    assert sorted(ids) == list(range(1, parts + 1))  # none lost, none twice
    judged = [r for r in results if r["engine"] is not None]
    assert all(r["reason"] == "overload" for r in results if r["engine"] is None)
    for result in judged:
        trigger = result["trigger_monotonic_ns"]
        want = "0.2.0" if switch <= trigger < switch_back else "0.1.0"
        assert result["engine"] == {"name": "tiny", "version": want, "model_sha256": model}
    # The verdict stream shows each switch once, in part order.
    by_part = sorted(judged, key=lambda r: r["part_id"])
    runs = [v for v, _ in itertools.groupby(r["engine"]["version"] for r in by_part)]
    assert runs == ["0.1.0", "0.2.0", "0.1.0"]
    assert sum(r["engine"]["version"] == "0.2.0" for r in judged) >= PER_ENGINE

    # The retained engine topic followed every switch, and tells a newcomer what is active.
    engines = [(e["version"], e["active_since_monotonic_ns"]) for e in _json(line, "engine")]
    assert engines == [("0.1.0", None), ("0.2.0", switch), ("0.1.0", switch_back)]
    assert _retained_engine(line.broker) == "0.1.0"


def _json(line: SwapLine, suffix: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in line.on(suffix)]


def _retained_engine(broker: Broker) -> str:
    late = Subscriber(broker, [PREFIX + "engine"])
    late.connect()
    try:
        [message] = late.wait_for(lambda got: len(got) >= 1, 5)
        assert message.retain
        return str(json.loads(message.payload)["version"])
    finally:
        late.disconnect()
