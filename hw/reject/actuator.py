"""The RejectActuator interface and the `none` actuator."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@runtime_checkable
class RejectActuator(Protocol):
    """One output that throws a part off (or, in positive mode, lets a good part pass).

    `set(True)` starts a pulse, `set(False)` ends it; the scheduler times both, on its own
    thread. `part_id` is the part the pulse is for (used by outputs that report it, e.g. PLC
    registers). Every method but close raises hw.errors.OutputError when the output cannot be
    driven, within a bounded time (a device that does not answer times out). After a failure
    the scheduler calls close() then open() to get a fresh connection.
    """

    name: str

    def open(self) -> None:
        """Claim the output, drive it to its safe state (off) and check that it answers.
        Idempotent."""
        ...

    def close(self) -> None:
        """Drive the output off and release it. Idempotent; never raises."""
        ...

    def set(self, on: bool, part_id: int | None = None) -> None:
        """Drive the output on or off."""
        ...


class NoneActuator:
    """Drives nothing: logs each pulse at debug level and counts them."""

    name = "none"

    def __init__(self) -> None:
        self.pulses = 0
        self.is_on = False

    def open(self) -> None:
        log.info("reject actuator: none (pulses are logged, nothing is driven)")

    def close(self) -> None:
        self.is_on = False

    def set(self, on: bool, part_id: int | None = None) -> None:
        if on and not self.is_on:
            self.pulses += 1
        self.is_on = on
        log.debug("reject actuator none: %s (part %s)", "on" if on else "off", part_id)
