"""Reject I/O: the actuators that throw a part off the line, and the scheduler that fires them.

RejectActuator (actuator.py) is one output: none (logs), camera_line (a camera's digital output
line, pypylon), modbus (a coil, or verdict registers for a PLC that tracks parts itself, plus a
heartbeat register), gpio (a libgpiod v2 line). RejectScheduler (scheduler.py) keys parts by id
and fires each reject at trigger time + delay, fail-safe. Vendor SDKs are imported lazily by the
backend that needs them; their errors come out as hw.errors.OutputError.
"""

from hw.reject.actuator import NoneActuator, RejectActuator
from hw.reject.scheduler import RejectCounters, RejectScheduler

__all__ = ["NoneActuator", "RejectActuator", "RejectCounters", "RejectScheduler"]
