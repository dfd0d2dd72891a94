"""The gpio reject output: against gpio-sim when the machine has it (skipped otherwise), and its
mapping onto libgpiod v2's API and errors with a stand-in `gpiod` module."""

from __future__ import annotations

import glob
import sys
import types
from enum import Enum
from typing import Any

import pytest

from hw.errors import OutputError
from hw.reject.gpio import GpioActuator


class _Value(Enum):
    INACTIVE = 0
    ACTIVE = 1


class _Direction(Enum):
    INPUT = 0
    OUTPUT = 1


class _Request:
    def __init__(self, fail: bool) -> None:
        self.values: list[tuple[int, _Value]] = []
        self.released = False
        self.fail = fail

    def set_value(self, line: int, value: _Value) -> None:
        if self.fail:
            raise OSError("line gone")
        self.values.append((line, value))

    def release(self) -> None:
        self.released = True


@pytest.fixture
def fake_gpiod(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"requests": [], "fail_request": False, "fail_set": False}
    mod = types.ModuleType("gpiod")
    line = types.ModuleType("gpiod.line")
    line.Direction = _Direction  # type: ignore[attr-defined]
    line.Value = _Value  # type: ignore[attr-defined]

    def request_lines(chip: str, consumer: str, config: dict[int, Any]) -> _Request:
        if state["fail_request"]:
            raise OSError(f"{chip}: no such device")
        req = _Request(state["fail_set"])
        state["requests"].append((chip, consumer, config, req))
        return req

    mod.request_lines = request_lines  # type: ignore[attr-defined]
    mod.LineSettings = lambda **kw: kw  # type: ignore[attr-defined]
    mod.line = line  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gpiod", mod)
    monkeypatch.setitem(sys.modules, "gpiod.line", line)
    return state


def test_requests_one_output_line_and_drives_it(fake_gpiod: dict[str, Any]) -> None:
    act = GpioActuator("/dev/gpiochip3", 5)
    act.open()
    act.open()
    act.set(True)
    act.set(False)
    act.close()
    act.close()
    ((chip, consumer, config, req),) = fake_gpiod["requests"]
    assert chip == "/dev/gpiochip3" and consumer == "partsight-reject"
    assert config[5]["output_value"] is _Value.INACTIVE
    assert req.values == [(5, _Value.ACTIVE), (5, _Value.INACTIVE), (5, _Value.INACTIVE)]
    assert req.released


def test_errors_are_output_errors(fake_gpiod: dict[str, Any]) -> None:
    fake_gpiod["fail_request"] = True
    with pytest.raises(OutputError, match="no such device"):
        GpioActuator("/dev/gpiochip9", 0).open()
    with pytest.raises(OutputError, match="not open"):
        GpioActuator("/dev/gpiochip9", 0).set(True)
    fake_gpiod["fail_request"], fake_gpiod["fail_set"] = False, True
    act = GpioActuator("/dev/gpiochip0", 0)
    act.open()
    with pytest.raises(OutputError, match="line gone"):
        act.set(True)
    act.close()  # never raises


def test_missing_gpiod_is_output_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiod", None)
    with pytest.raises(OutputError, match="gpiod"):
        GpioActuator("/dev/gpiochip0", 0).open()


def test_against_gpio_sim() -> None:
    gpiod = pytest.importorskip("gpiod", reason="gpiod (libgpiod v2 bindings) not installed")
    chips = sorted(glob.glob("/dev/gpiochip*"))
    sim = [c for c in chips if "gpio-sim" in gpiod.Chip(c).get_info().label]
    if not sim:
        pytest.skip("no gpio-sim chip (needs the gpio-sim kernel module and configfs setup)")
    act = GpioActuator(sim[0], 0)
    act.open()
    try:
        act.set(True)
        act.set(False)
    finally:
        act.close()
