"""Fixtures for tests against real components.

`broker`: a running Mosquitto on a free loopback port (anonymous, persistence off), stopped
after the test. `make_broker(**options)`: more brokers, or ones with extra configuration (see
tests/integration/broker.py); each is stopped after the test. Both skip the test when the
mosquitto binary is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.broker import Broker, MakeBroker, mosquitto_binary
from tests.integration.plc import Plc


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[MakeBroker]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    brokers: list[Broker] = []

    def make(start: bool = True, **options: Any) -> Broker:
        broker = Broker(tmp_path / f"broker{len(brokers)}", **options)
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(make_broker: MakeBroker) -> Broker:
    return make_broker()


@pytest.fixture
def plc() -> Iterator[Plc]:
    """A pymodbus PLC on loopback (tests/integration/plc.py), stopped after the test."""
    server = Plc()
    server.start()
    yield server
    server.stop()
