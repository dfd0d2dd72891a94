"""The reject output: what throws a rejected part off the line.

One interface (RejectOutput), implementations chosen by the config's `kind`: `none` drives
nothing and logs; camera_line, modbus and gpio are ScheduledRejectOutput, a hw.reject scheduler
(pulse at trigger + delay, fail-safe timeout, positive mode) around the kind's actuator. The
output itself is driven on the scheduler's own thread: `handle` never waits on it and never
raises for it. Its state (up, or down and reopening, with the pulses lost) is `health()`, which
the daemon reports on `status`, `metrics` and the systemd STATUS line.

The output stage calls `handle` for every verdict, OK ones included, as soon as the verdict is
settled (before results are put in part order): a real output may need to know about good
parts too (a diverter that must stay open), and it must never wait on anything else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from edge.config.reject import (
    CameraLineRejectConfig,
    GpioRejectConfig,
    ModbusRejectConfig,
    RejectConfig,
)
from edge.daemon.verdict import Verdict
from hw.camera.clock import Clock
from hw.health import Health, up
from hw.reject.actuator import RejectActuator
from hw.reject.scheduler import RejectScheduler

log = logging.getLogger(__name__)


@runtime_checkable
class RejectOutput(Protocol):
    name: str

    def open(self) -> None:
        """Claim and set up the output. Idempotent."""
        ...

    def close(self, timeout_s: float = 5.0) -> None:
        """Let the pulses already scheduled fire (waiting at most `timeout_s`), then release
        the output in its safe state. Idempotent; never raises."""
        ...

    def expect(self, part_id: int, trigger_ns: int) -> None:
        """A part was triggered at `trigger_ns` (monotonic ns): a timed output rejects it
        (timeout) unless its verdict comes in time."""
        ...

    def handle(self, verdict: Verdict) -> None:
        """Act on one part's verdict (a rejected one is thrown out). Never waits on the
        output and never raises for it."""
        ...

    def health(self) -> Health:
        """The output's state and the pulses it lost."""
        ...


class NoneRejectOutput:
    """No reject output: verdicts are published, parts are not thrown out."""

    name = "none"

    def __init__(self) -> None:
        self.rejected = 0
        self._health = up()

    def open(self) -> None:
        log.info("reject output: none (rejected parts are reported, not thrown out)")

    def close(self, timeout_s: float = 5.0) -> None:
        pass

    def health(self) -> Health:
        return self._health

    def expect(self, part_id: int, trigger_ns: int) -> None:
        pass  # nothing is timed: the verdict is only reported

    def handle(self, verdict: Verdict) -> None:
        if verdict.rejected:
            self.rejected += 1
            log.debug(
                "part %d: %s (%s); no reject output configured",
                verdict.part_id,
                verdict.verdict,
                verdict.reason,
            )


class ScheduledRejectOutput:
    """A timed reject output: each verdict goes to the scheduler, which drives the actuator."""

    def __init__(self, scheduler: RejectScheduler) -> None:
        self.scheduler = scheduler
        self.name = scheduler.name

    def open(self) -> None:
        self.scheduler.open()

    def close(self, timeout_s: float = 5.0) -> None:
        self.scheduler.close(timeout_s)

    def expect(self, part_id: int, trigger_ns: int) -> None:
        """A part was triggered: it is rejected (timeout) unless its verdict comes in time."""
        self.scheduler.expect(part_id, trigger_ns)

    def handle(self, verdict: Verdict) -> None:
        self.scheduler.verdict(
            verdict.part_id, verdict.trigger_ns, verdict.rejected, verdict.reason
        )

    def health(self) -> Health:
        return self.scheduler.health()


def create_reject_output(
    config: RejectConfig,
    *,
    camera: Callable[[], Any] | None = None,
    latency_ms: float | None = None,
    clock: Clock | None = None,
) -> RejectOutput:
    """The reject output the configuration names.

    `camera` returns the open pylon InstantCamera (camera_line only); `latency_ms` is the
    pipeline's declared or measured latency (e.g. [pipeline] deadline_ms): a reject delay that
    leaves less than that before the timeout is a ValueError (a configuration error).
    """
    if config.kind == "none":
        return NoneRejectOutput()
    actuator = _actuator(config, camera)
    heartbeat = None
    period_s = 1.0
    if isinstance(config, ModbusRejectConfig) and config.heartbeat_register is not None:
        heartbeat = actuator.heartbeat  # type: ignore[attr-defined]
        period_s = config.heartbeat_period_ms / 1e3
    scheduler = RejectScheduler(
        actuator,
        delay_s=config.delay_ms / 1e3,
        pulse_s=config.pulse_ms / 1e3,
        margin_s=config.margin_ms / 1e3,
        max_late_s=None if config.max_late_ms is None else config.max_late_ms / 1e3,
        positive=config.mode == "positive",
        latency_s=None if latency_ms is None else latency_ms / 1e3,
        heartbeat=heartbeat,
        heartbeat_period_s=period_s,
        reconnect_min_s=config.reconnect_min_s,
        reconnect_max_s=config.reconnect_max_s,
        clock=clock,
    )
    return ScheduledRejectOutput(scheduler)


def _actuator(
    config: CameraLineRejectConfig | ModbusRejectConfig | GpioRejectConfig,
    camera: Callable[[], Any] | None,
) -> RejectActuator:
    if isinstance(config, ModbusRejectConfig):
        from hw.reject.modbus import ModbusActuator

        return ModbusActuator(
            config.host,
            port=config.port,
            unit=config.unit,
            mode=config.target,
            coil=config.coil,
            register=config.registers,
            heartbeat_register=config.heartbeat_register,
            code=2 if config.mode == "positive" else 1,
            timeout_s=config.timeout_ms / 1e3,
        )
    if isinstance(config, CameraLineRejectConfig):
        from hw.reject.camera_line import CameraLineActuator

        if camera is None:
            raise ValueError("reject kind camera_line needs the camera (a basler camera)")
        return CameraLineActuator(camera, line=config.line, user_output=config.user_output)
    from hw.reject.gpio import GpioActuator

    return GpioActuator(config.chip, config.line, active_low=config.active_low)
