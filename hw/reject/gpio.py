"""GPIO reject output through libgpiod v2's python bindings (`gpiod`, imported lazily)."""

from __future__ import annotations

import logging
from typing import Any

from hw.errors import OutputError

log = logging.getLogger(__name__)


class GpioActuator:
    def __init__(self, chip: str, line: int, *, active_low: bool = False) -> None:
        self.name = "gpio"
        self.chip, self.line, self.active_low = chip, line, active_low
        self._request: Any = None
        self._values: Any = None

    def open(self) -> None:
        if self._request is not None:
            return
        try:
            import gpiod
            from gpiod.line import Direction, Value
        except ImportError as exc:
            raise OutputError("gpio reject output: gpiod (libgpiod v2 bindings) missing") from exc
        self._values = (Value.INACTIVE, Value.ACTIVE)
        try:
            self._request = gpiod.request_lines(
                self.chip,
                consumer="partsight-reject",
                config={
                    self.line: gpiod.LineSettings(
                        direction=Direction.OUTPUT,
                        output_value=Value.INACTIVE,
                        active_low=self.active_low,
                    )
                },
            )
        except (OSError, ValueError) as exc:
            raise OutputError(f"gpio reject output: {self.chip} line {self.line}: {exc}") from exc
        log.info("reject output: gpio %s line %d", self.chip, self.line)

    def close(self) -> None:
        request, self._request = self._request, None
        if request is None:
            return
        try:
            request.set_value(self.line, self._values[0])
            request.release()
        except (OSError, ValueError) as exc:
            log.warning("gpio reject output: release failed: %s", exc)

    def set(self, on: bool, part_id: int | None = None) -> None:
        if self._request is None:
            raise OutputError("gpio reject output is not open")
        try:
            self._request.set_value(self.line, self._values[1 if on else 0])
        except (OSError, ValueError) as exc:
            raise OutputError(f"gpio reject output: set {on}: {exc}") from exc
