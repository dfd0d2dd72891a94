"""[reject]: how a NOK part is thrown out, chosen by `kind`.

none: verdicts are published, nothing is driven. camera_line, modbus, gpio: a reject pulse fired
by hw.reject's scheduler at trigger time + delay_ms, lasting pulse_ms; a part without a verdict
by delay_ms - margin_ms is rejected (reason timeout). mode = "positive" inverts the output: a
PASS pulse for OK parts only, so a dead system rejects everything.

A pulse that cannot start by its time + max_late_ms (the output down, or still busy with a
request that hangs) is lost: counted, and the part named in the log and on `status`. An output
that fails is reopened once at once (within that budget), then with back-off from
reconnect_min_s to reconnect_max_s.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from edge.config.base import StrictModel


class NoneRejectConfig(StrictModel):
    """No reject output: verdicts are published, parts are not thrown out."""

    kind: Literal["none"] = Field(description="none: no reject output is driven")


class _TimedReject(StrictModel):
    delay_ms: float = Field(gt=0, description="from trigger to the start of the reject pulse")
    pulse_ms: float = Field(20.0, gt=0, description="how long the pulse lasts")
    margin_ms: float = Field(
        10.0, ge=0, description="a part without a verdict by delay_ms - margin_ms is rejected"
    )
    mode: Literal["reject", "positive"] = Field(
        "reject", description="reject: pulse for rejected parts; positive: pulse for OK parts"
    )
    max_late_ms: float | None = Field(
        None,
        ge=0,
        description="a pulse that cannot start this long after its time is lost (counted and "
        "named); omitted: pulse_ms",
    )
    reconnect_min_s: float = Field(
        0.5, gt=0, description="first delay before reopening an output that failed"
    )
    reconnect_max_s: float = Field(10.0, gt=0, description="longest delay between reopen attempts")

    @model_validator(mode="after")
    def _margin_below_delay(self) -> _TimedReject:
        if self.margin_ms >= self.delay_ms:
            raise ValueError("margin_ms must be smaller than delay_ms")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self


class CameraLineRejectConfig(_TimedReject):
    """The camera's digital output line, driven as a user output."""

    kind: Literal["camera_line"] = Field(description="camera_line: the camera's output line")
    line: int = Field(1, ge=0, le=7, description="LineN driven")
    user_output: int = Field(1, ge=0, le=7, description="UserOutputK that drives the line")


class ModbusRejectConfig(_TimedReject):
    """A PLC over Modbus/TCP: a coil pulse, or verdict registers the PLC acts on."""

    kind: Literal["modbus"] = Field(description="modbus: a PLC over Modbus/TCP")
    host: str = Field(min_length=1, description="the PLC's address")
    port: int = Field(502, ge=1, le=65535, description="the PLC's Modbus/TCP port")
    unit: int = Field(1, ge=0, le=255, description="Modbus unit (device) id")
    target: Literal["coil", "registers"] = Field(
        "coil", description="coil: pulse a coil; registers: write part id + verdict"
    )
    coil: int = Field(0, ge=0, le=65535, description="the reject coil (target = coil)")
    registers: int = Field(
        0, ge=0, le=65533, description="first of 3 holding registers: id low, id high, verdict"
    )
    heartbeat_register: int | None = Field(
        None, ge=0, le=65535, description="holding register counting up while parts flow"
    )
    heartbeat_period_ms: float = Field(1000.0, gt=0, description="heartbeat write period")
    timeout_ms: float = Field(
        200.0,
        gt=0,
        description="how long one Modbus request waits for the PLC's answer (it is sent once)",
    )


class GpioRejectConfig(_TimedReject):
    """A GPIO line through libgpiod v2."""

    kind: Literal["gpio"] = Field(description="gpio: a GPIO line (libgpiod v2)")
    chip: str = Field("/dev/gpiochip0", min_length=1, description="the GPIO chip device")
    line: int = Field(ge=0, description="line offset on the chip")
    active_low: bool = Field(False, description="the line is active low")


RejectConfig = Annotated[
    NoneRejectConfig | CameraLineRejectConfig | ModbusRejectConfig | GpioRejectConfig,
    Field(discriminator="kind"),
]
