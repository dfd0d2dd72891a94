"""The none and modbus actuators' error paths, and building reject outputs from [reject]."""

from __future__ import annotations

import socket

import pytest
from pydantic import TypeAdapter, ValidationError

from edge.config.reject import RejectConfig
from edge.daemon.reject import NoneRejectOutput, ScheduledRejectOutput, create_reject_output
from hw.errors import OutputError
from hw.reject import NoneActuator
from hw.reject.modbus import ModbusActuator

CONFIG: TypeAdapter[RejectConfig] = TypeAdapter(RejectConfig)


def test_none_actuator_counts_pulses() -> None:
    act = NoneActuator()
    act.open()
    act.set(True, 1)
    act.set(True, 2)
    act.set(False)
    act.close()
    assert act.pulses == 1


def test_modbus_unreachable_is_output_error() -> None:
    pytest.importorskip("pymodbus")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(OutputError, match="cannot connect"):
        ModbusActuator("127.0.0.1", port=port, timeout_s=0.2).open()
    with pytest.raises(OutputError, match="not connected"):
        ModbusActuator("127.0.0.1").set(True)


def test_config_kinds_and_checks() -> None:
    cfg = CONFIG.validate_python({"kind": "modbus", "host": "plc", "delay_ms": 300})
    assert cfg.kind == "modbus" and cfg.pulse_ms == 20.0 and cfg.mode == "reject"
    gpio = CONFIG.validate_python({"kind": "gpio", "line": 4, "delay_ms": 100, "mode": "positive"})
    assert gpio.kind == "gpio"
    with pytest.raises(ValidationError):
        CONFIG.validate_python({"kind": "gpio", "line": 4, "delay_ms": 10, "margin_ms": 10})
    with pytest.raises(ValidationError):
        CONFIG.validate_python({"kind": "modbus", "host": "plc", "delay_ms": 300, "coils": 1})


def test_create_reject_output() -> None:
    assert isinstance(
        create_reject_output(CONFIG.validate_python({"kind": "none"})), NoneRejectOutput
    )
    modbus = CONFIG.validate_python({"kind": "modbus", "host": "plc", "delay_ms": 300})
    out = create_reject_output(modbus, latency_ms=250)
    assert isinstance(out, ScheduledRejectOutput) and out.name == "modbus"
    with pytest.raises(ValueError, match="latency"):
        create_reject_output(modbus, latency_ms=295)
    line = CONFIG.validate_python({"kind": "camera_line", "delay_ms": 300})
    with pytest.raises(ValueError, match="camera"):
        create_reject_output(line)
    assert create_reject_output(line, camera=lambda: None).name == "camera_line"
