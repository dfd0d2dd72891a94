"""Hot swap: loading another engine while the line runs, and switching to it between parts.

Requests come from `systemctl reload` (SIGHUP: follow the store's active pointer, or reload the
configured folder) and from SCADA (`cmd/engine/activate`: an engine already installed in the
store, by name and version). One worker thread serves them in turn, while the inspection stage
goes on judging parts with the running engine:

1. verify the new engine again (signature, every file's hash) and load it beside the running
   one, on this station's backend, and re-score its golden samples;
2. for an activation, record it as the store's active engine (the pointer), so a restart keeps it;
3. switch at the current monotonic time T (edge.daemon.engines.EngineSlot): parts triggered
   before T finish on the old engine, parts triggered from T on go to the new one;
4. publish the retained `engine` topic, and the outcome on `cmd/response`.

If any of 1-2 fails, nothing switches: the old engine keeps judging, and the reason goes to the
log (ERROR) and to `cmd/response`. A reload that finds the engine unchanged does nothing.

Commands arrive on paho's network thread and are only queued here; parsing, loading and
answering happen on this worker's thread.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.daemon.engines import ActiveEngine, EngineSlot, EngineSource
from edge.daemon.payload import response_payload
from edge.daemon.worker import FatalHandler, Worker
from edge.errors import PartSightError
from edge.store import EngineRef
from hw.camera.clock import Clock

log = logging.getLogger(__name__)

ACTIVATE = "engine/activate"  # under cmd/: partsight/<site>/<line>/<station>/cmd/engine/activate
RELOAD = "reload"  # SIGHUP
_QUEUE = 8
_GET_TIMEOUT_S = 0.1
MAX_COMMAND_BYTES = 4096


class ActivateCommand(BaseModel):
    """The payload of `cmd/engine/activate`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    request_id: str = Field(min_length=1, max_length=128, description="echoed in the response")


@dataclass(frozen=True)
class SwapRequest:
    command: str  # ACTIVATE or RELOAD
    target: EngineRef | None  # None: what the configuration names now
    request_id: str | None = None


@dataclass(frozen=True)
class SwapOutcome:
    request: SwapRequest
    ok: bool
    active: ActiveEngine  # after the request: the new engine, or the one still running
    error: str | None = None
    switched: bool = False
    load_ms: float | None = None  # verify + load + golden samples


class EngineSwapper(Worker):
    def __init__(
        self,
        *,
        slot: EngineSlot,
        source: EngineSource,
        clock: Clock,
        stop: threading.Event,
        on_fatal: FatalHandler,
        announce: Callable[[ActiveEngine], None],
        respond: Callable[[dict[str, Any]], None],
    ) -> None:
        super().__init__("engine-swap", stop, on_fatal)
        self.slot = slot
        self.source = source
        self.clock = clock
        self._announce = announce
        self._respond = respond
        self._requests: queue.Queue[SwapRequest | bytes] = queue.Queue(_QUEUE)

    # -- requests (any thread) ----------------------------------------------------------------

    def reload(self) -> None:
        """Follow the configuration: the store's active pointer, or the configured folder."""
        self._put(SwapRequest(RELOAD, None))

    def command(self, payload: bytes) -> None:
        """A raw `cmd/engine/activate` message (called on paho's network thread)."""
        self._put(payload)

    def _put(self, item: SwapRequest | bytes) -> None:
        try:
            self._requests.put_nowait(item)
        except queue.Full:
            error = f"busy: {_QUEUE} engine requests are waiting; this one is dropped"
            log.error("engine swap requests are piling up: %s", error)
            if isinstance(item, bytes):  # SCADA waits for an answer to its request id
                self._refuse(_request_id(item), error)

    # -- the worker ---------------------------------------------------------------------------

    def loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                item = self._requests.get(timeout=_GET_TIMEOUT_S)
            except queue.Empty:
                continue
            request = self.parse(item) if isinstance(item, bytes) else item
            if request is not None:
                self.serve(request)

    def serve(self, request: SwapRequest) -> SwapOutcome:
        outcome = self._swap(request)
        if outcome.switched:
            self._announce(outcome.active)
        if request.command == ACTIVATE or not outcome.ok or outcome.switched:
            self._respond(response_payload(
                command=request.command,
                request_id=request.request_id,
                ok=outcome.ok,
                error=outcome.error,
                engine=outcome.active.info,
                since_ns=outcome.active.since_ns,
                load_ms=outcome.load_ms,
            ))  # fmt: skip
        return outcome

    def _swap(self, request: SwapRequest) -> SwapOutcome:
        running = self.slot.current
        started = time.perf_counter()
        try:
            target = request.target or self.source.wanted()
            if _names(target, running):  # nothing to load; an activation still records it
                log.info("%s: %s is already running", request.command, running.info)
                if request.command == ACTIVATE and target is not None:
                    self.source.commit(target)
                return SwapOutcome(request, True, running)
            what = target or self.source.describe()
            log.info("%s: loading %s beside %s", request.command, what, running.info)
            loaded = self.source.open(target)
            if self.stop_event.is_set():  # stopping: neither record nor switch to it
                raise SwapAbandoned("the daemon is stopping")
            if request.command == RELOAD and loaded.info == running.info:
                log.info("reload: %s is unchanged", running.info)
                return SwapOutcome(request, True, running)
            if request.command == ACTIVATE and target is not None:
                self.source.commit(target)
        except PartSightError as exc:
            error = " ".join(str(exc).split())
            log.error("%s refused, %s keeps running: %s", request.command, running.info, error)
            return SwapOutcome(request, False, running, error=error)
        load_ms = (time.perf_counter() - started) * 1e3
        active = self.slot.switch(
            loaded, stamp=lambda: (self.clock.monotonic_ns(), self.clock.time())
        )
        log.info(
            "engine switched: %s -> %s (loaded and checked in %.0f ms)",
            running.info,
            active.info,
            load_ms,
        )
        return SwapOutcome(request, True, active, switched=True, load_ms=load_ms)

    def parse(self, payload: bytes) -> SwapRequest | None:
        """A command message as a request; a malformed one is answered here (None)."""
        try:
            if len(payload) > MAX_COMMAND_BYTES:
                raise ValueError(f"more than {MAX_COMMAND_BYTES} bytes")
            command = ActivateCommand.model_validate_json(payload)
            return SwapRequest(
                ACTIVATE, EngineRef(command.name, command.version), command.request_id
            )
        except (ValidationError, ValueError, PartSightError) as exc:
            error = _why(exc)
        request_id = _request_id(payload)
        log.error("engine/activate refused (request %s): %s", request_id, error)
        self._refuse(request_id, error)
        return None

    def _refuse(self, request_id: str | None, error: str) -> None:
        """Answer an activation that will not be served: the running engine stays."""
        running = self.slot.current
        self._respond(response_payload(
            command=ACTIVATE,
            request_id=request_id,
            ok=False,
            error=error,
            engine=running.info,
            since_ns=running.since_ns,
            load_ms=None,
        ))  # fmt: skip


class SwapAbandoned(PartSightError):
    """A swap given up because the daemon stops while the new engine was loading."""


def _names(target: EngineRef | None, engine: ActiveEngine) -> bool:
    """True when `target` names the engine `engine` runs."""
    return target is not None and (target.name, target.version) == (
        engine.info.name,
        engine.info.version,
    )


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        return f"malformed command: {where}: {first['msg']}"
    return f"malformed command: {exc}"


def _request_id(payload: bytes) -> str | None:
    """The request id of a command that failed validation, when one can be read."""
    try:
        found = json.loads(payload).get("request_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) and 0 < len(found) <= 128 else None
