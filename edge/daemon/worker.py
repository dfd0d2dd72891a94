"""The base of the pipeline's workers: a thread running one `loop()`, with the catch-all.

An exception escaping a worker's loop is a bug or a fault nothing below could handle (a part-id
file that can no longer be written, ...). It is logged with its traceback and reported to the
daemon, which stops and exits 1 so that systemd restarts it; the parts still in flight get
their verdicts from the stages that are still running.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

FatalHandler = Callable[[str, BaseException], None]


class Worker(ABC):
    def __init__(self, name: str, stop: threading.Event, on_fatal: FatalHandler) -> None:
        self.name = name
        self.stop_event = stop
        self.finished = threading.Event()  # set when run() returns, however it ends
        self._on_fatal = on_fatal
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"worker {self.name} already started")
        # A daemon thread: one stuck in a blocking call must not keep the process alive after
        # the daemon has given up waiting for it.
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def run(self) -> None:
        try:
            self.loop()
        except Exception as exc:  # the worker's top level: log it, then stop the daemon
            log.exception("%s worker failed", self.name)
            self._on_fatal(self.name, exc)
        finally:
            self.finished.set()

    @abstractmethod
    def loop(self) -> None:
        """Work until the stop event says so (and whatever the worker drains is drained)."""

    def join(self, timeout_s: float) -> bool:
        """Wait for the worker to end; False if it did not within `timeout_s`."""
        if self._thread is None:
            return True
        self._thread.join(max(0.0, timeout_s))
        if self._thread.is_alive():
            log.warning("%s worker did not stop within %.1f s", self.name, timeout_s)
            return False
        return True

    @property
    def done(self) -> bool:
        """True when the worker has ended, or never started."""
        return self._thread is None or self.finished.is_set()
