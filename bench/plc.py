"""A pymodbus Modbus/TCP server standing in for a PLC, for the benchmarks (benchmarks do not
import the tests; tests/integration/plc.py is the tests' fuller one).

It records the register writes it answers, with the monotonic time each arrived, and can hang:
`hang.set()` and it reads every request and answers none (its packet trace hook sends nothing),
as a PLC whose program has stopped.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

LOOPBACK = "127.0.0.1"
_REGISTER_WRITES = ("WriteMultipleRegistersRequest", "WriteSingleRegisterRequest")


class BenchPlc:
    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            self.port = int(s.getsockname()[1])
        self.writes: list[tuple[int, int, tuple[int, ...]]] = []  # (t_ns, address, values)
        self.hang = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-plc", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(5.0):
            raise RuntimeError("the bench PLC did not start")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the bench PLC does not accept connections")

    def stop(self) -> None:
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5.0)
        self._thread.join(5.0)

    def _run(self) -> None:
        from pymodbus.datastore import (
            ModbusDeviceContext,
            ModbusSequentialDataBlock,
            ModbusServerContext,
        )
        from pymodbus.server import ModbusTcpServer

        async def serve() -> None:
            block = ModbusSequentialDataBlock
            context = ModbusServerContext(
                ModbusDeviceContext(co=block(1, [0] * 200), hr=block(1, [0] * 200))
            )
            self._server = ModbusTcpServer(
                context,
                address=(LOOPBACK, self.port),
                trace_packet=self._trace_packet,
                trace_pdu=self._trace_pdu,
            )
            self._loop.call_soon(self._ready.set)
            await self._server.serve_forever()

        self._loop.run_until_complete(serve())

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return b"" if sending and self.hang.is_set() else data

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        written = type(pdu).__name__ in _REGISTER_WRITES
        if written and not sending and not self.hang.is_set():
            self.writes.append((time.monotonic_ns(), pdu.address, tuple(pdu.registers)))
        return pdu
