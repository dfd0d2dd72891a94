"""A real pymodbus Modbus/TCP server standing in for a PLC, on a free loopback port.

    plc = Plc(); plc.start()
    plc.writes                   # every write it answered, with the monotonic time it arrived
    plc.hang.set()               # accept connections and requests, never answer (a PLC stuck)
    plc.idle_close_s = 0.3       # close a connection idle that long (many PLCs do)
    plc.stop(); plc.start()      # a PLC restart: down, then back on the same port

The server runs its asyncio loop in a thread of its own. Hanging is done at the wire: the answer
pymodbus builds is replaced by nothing (its packet trace hook returns b""), so the connection
stays open and the requests are read, as with a PLC whose program has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Write:
    t_ns: int
    kind: str  # "coil" | "registers"
    address: int
    values: tuple[int, ...]

    @property
    def part_id(self) -> int:
        """For a verdict written to registers: the part id (low word, high word)."""
        return self.values[0] | self.values[1] << 16


class Plc:
    def __init__(self, port: int | None = None) -> None:
        if port is None:
            with socket.socket() as s:
                s.bind((LOOPBACK, 0))
                port = int(s.getsockname()[1])
        self.port = port
        self.writes: list[Write] = []
        self.connections = 0  # TCP connections accepted, over every start
        self.hang = threading.Event()
        self.idle_close_s: float | None = None
        self.idle_closes = 0  # connections it closed for being idle
        self._last_activity = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def register_writes(self, address: int) -> list[Write]:
        return [w for w in self.writes if w.kind == "registers" and w.address == address]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout_s: float = 5.0) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(self._loop, ready), name="plc", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout_s):
            raise RuntimeError("the test PLC did not start")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:  # wait until it accepts connections
            try:
                socket.create_connection((LOOPBACK, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the test PLC does not accept connections")

    def stop(self) -> None:
        """Shut the server and every connection down (the port refuses connections after)."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return
        asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(5.0)
        if self._thread is not None:
            self._thread.join(5.0)
        self._server, self._loop, self._thread = None, None, None

    def drop_connections(self) -> None:
        """Close every open connection from the PLC's side, now."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._close_all)

    # -- the server thread ------------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
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
                trace_connect=self._trace_connect,
            )
            loop.call_soon(ready.set)
            idle = loop.create_task(self._idle_watch())
            try:
                await self._server.serve_forever()
            finally:
                idle.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await idle

        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve())
        loop.close()

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        self._last_activity = time.monotonic()
        return b"" if sending and self.hang.is_set() else data

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if sending or self.hang.is_set():
            return pdu
        name = type(pdu).__name__
        now = time.monotonic_ns()
        if name == "WriteSingleCoilRequest":
            self.writes.append(Write(now, "coil", pdu.address, (int(pdu.bits[0]),)))
        elif name in ("WriteMultipleRegistersRequest", "WriteSingleRegisterRequest"):
            self.writes.append(Write(now, "registers", pdu.address, tuple(pdu.registers)))
        return pdu

    def _trace_connect(self, connected: bool) -> None:
        if connected:
            self.connections += 1
            self._last_activity = time.monotonic()

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            idle = self.idle_close_s
            if idle is not None and time.monotonic() - self._last_activity > idle:
                if self._close_all():
                    self.idle_closes += 1
                self._last_activity = time.monotonic()

    def _close_all(self) -> bool:
        server = self._server
        connections = list(server.active_connections.values()) if server is not None else []
        for connection in connections:
            connection.close()
        return bool(connections)
