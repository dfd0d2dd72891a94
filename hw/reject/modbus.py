"""Modbus/TCP reject output (pymodbus, imported lazily).

mode "coil": the reject pulse is a coil written on, then off.
mode "registers": for a PLC that tracks parts itself: at the part's pulse the verdict is written
to holding registers [register, register+1, register+2] = [part id low 16 bits, part id high
16 bits, 1 = reject (2 = pass in positive mode)] and the PLC ejects; the off edge writes nothing.
A heartbeat counter (0..65535, wrapping) can be written to its own holding register.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from hw.errors import OutputError

log = logging.getLogger(__name__)

ModbusMode = Literal["coil", "registers"]


class ModbusActuator:
    def __init__(
        self,
        host: str,
        *,
        port: int = 502,
        unit: int = 1,
        mode: ModbusMode = "coil",
        coil: int = 0,
        register: int = 0,
        heartbeat_register: int | None = None,
        code: int = 1,
        timeout_s: float = 0.5,
    ) -> None:
        self.name = "modbus"
        self.host, self.port, self.unit = host, port, unit
        self.mode: ModbusMode = mode
        self.coil, self.register, self.code = coil, register, code
        self.heartbeat_register = heartbeat_register
        self.timeout_s = timeout_s
        self._client: Any = None
        self._beat = 0

    def open(self) -> None:
        if self._client is not None:
            return
        try:
            from pymodbus.client import ModbusTcpClient
        except ImportError as exc:
            raise OutputError("modbus reject output: pymodbus is not installed") from exc
        client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=1)
        if not client.connect():
            client.close()
            raise OutputError(f"modbus reject output: cannot connect to {self.host}:{self.port}")
        self._client = client
        log.info(
            "reject output: modbus %s:%d unit %d (%s)", self.host, self.port, self.unit, self.mode
        )
        if self.mode == "coil":
            self.set(False)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self.mode == "coil":
                client.write_coil(self.coil, False, device_id=self.unit)
        except Exception as exc:
            log.warning("modbus reject output: could not turn the coil off on close: %s", exc)
        finally:
            client.close()

    def set(self, on: bool, part_id: int | None = None) -> None:
        if self.mode == "coil":
            self._call("write_coil", self.coil, on)
        elif on:
            pid = part_id if part_id is not None else 0
            self._call(
                "write_registers", self.register, [pid & 0xFFFF, (pid >> 16) & 0xFFFF, self.code]
            )

    def heartbeat(self) -> None:
        if self.heartbeat_register is None:
            return
        self._beat = (self._beat + 1) & 0xFFFF
        self._call("write_register", self.heartbeat_register, self._beat)

    def _call(self, method: str, address: int, value: Any) -> None:
        if self._client is None:
            raise OutputError("modbus reject output is not open")
        try:
            response = getattr(self._client, method)(address, value, device_id=self.unit)
        except Exception as exc:  # pymodbus raises ModbusException and OS errors
            raise OutputError(f"modbus {method} {address}: {exc}") from exc
        if response.isError():
            raise OutputError(f"modbus {method} {address}: device answered {response}")
