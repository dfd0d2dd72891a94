"""The datagram socket systemd listens on for sd_notify, as a test's recorder."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


class NotifySocket:
    """The datagram socket systemd would listen on, recording each message with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode().split("\n"):
                self.messages.append((time.monotonic(), line))

    def times(self, field: str) -> list[float]:
        return [t for t, line in list(self.messages) if line == field]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def statuses(self) -> list[str]:
        """Every STATUS= text sent, in order."""
        return [line[7:] for _, line in list(self.messages) if line.startswith("STATUS=")]
