"""Modbus/TCP reject output (pymodbus, imported lazily).

mode "coil": the reject pulse is a coil written on, then off.
mode "registers": for a PLC that tracks parts itself: at the part's pulse the verdict is written
to holding registers [register, register+1, register+2] = [part id low 16 bits, part id high
16 bits, 1 = reject (2 = pass in positive mode)] and the PLC ejects; the off edge writes nothing.
A heartbeat counter (0..65535, wrapping) can be written to its own holding register.

Every request waits at most `timeout_s` for the PLC's answer and is sent once: the scheduler
decides about retrying (once, on a fresh connection, within the pulse's time budget) and about
reconnecting (with back-off), so a PLC that is gone costs one failed request, not a connection
attempt per write. open() checks that the PLC answers (coil mode: the coil is written off;
registers mode: the first register is read), so a PLC that accepts connections but never answers
stays down. pymodbus's own log lines are silenced: each failure reaches the scheduler as an
OutputError, which it reports once per change of state.
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
        self._announced = False

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port} unit {self.unit}"

    def open(self) -> None:
        if self._client is not None:
            return
        try:
            from pymodbus.client import ModbusTcpClient
        except ImportError as exc:
            raise OutputError("modbus reject output: pymodbus is not installed") from exc
        # Every failure comes back to us as an exception, reported once per change of state;
        # pymodbus would log one more line per failed request and per connection attempt.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)
        if not client.connect():
            client.close()
            raise OutputError(f"modbus {self.where}: cannot connect")
        self._client = client
        try:
            if self.mode == "coil":
                self.set(False)
            else:
                self._call("read_holding_registers", self.register, None)
        except OutputError:
            self.close()
            raise
        if not self._announced:  # once: reopening after a fault is reported by the scheduler
            self._announced = True
            log.info("reject output: modbus %s (%s)", self.where, self.mode)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if self.mode == "coil" and client.connected:
                client.write_coil(self.coil, False, device_id=self.unit)
        except Exception as exc:  # pymodbus raises ModbusException and OS errors
            log.debug("modbus %s: could not turn the coil off on close: %s", self.where, exc)
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
        client = self._client
        if client is None:
            raise OutputError(f"modbus {self.where}: not connected")
        args = (address,) if value is None else (address, value)
        try:
            response = getattr(client, method)(*args, device_id=self.unit)
        except Exception as exc:  # pymodbus raises ModbusException and OS errors
            client.close()  # whatever state the connection is in, the next try starts afresh
            raise OutputError(f"modbus {self.where}: {method} {address}: {self._why(exc)}") from exc
        if response.isError():
            raise OutputError(f"modbus {self.where}: {method} {address}: PLC answered {response}")

    def _why(self, exc: Exception) -> str:
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        if isinstance(exc, ModbusIOException):
            return f"no answer within {self.timeout_s * 1e3:g} ms"
        if isinstance(exc, ConnectionException):
            return "no connection (closed by the PLC, or refused)"
        return str(exc) or type(exc).__name__
