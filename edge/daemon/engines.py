"""The daemon's engines: where they come from, and which one judges which part.

EngineSource loads an engine the way this station runs it (edge.station_engine), from the
configured folder or from the engine store (edge.store), verifying its signature first whenever
the configuration names trusted keys (always, with the store).

EngineSlot is the pipeline's one swap point. Every part is judged by the engine that was active
at its trigger time: after a switch at monotonic time T, the parts triggered before T that are
still queued finish on the old engine, and every part triggered at or after T goes to the new
one. The inspection stage takes parts in trigger order, so the switch falls between two parts;
none is lost and none is judged twice. The old engine is let go once the first part triggered
after T has been handed its engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edge.bundle import load_bundle
from edge.config import Config
from edge.daemon.verdict import EngineInfo
from edge.station_engine import open_station_engine
from edge.store import EngineRef, EngineStore, StoreError, TrustedKeys, read_signed_manifest

if TYPE_CHECKING:
    from edge.backends import InferenceBackend
    from edge.bundle import Bundle
    from edge.inspection import Inspection

log = logging.getLogger(__name__)

# How long an MQTT activation waits for an engine command (an install) to release the store.
_STORE_WAIT_S = 5.0


class PartInspector(Protocol):
    """What the pipeline needs of an engine: edge.inspector.Inspector honours it."""

    bundle: Bundle
    backend: InferenceBackend
    threshold: float

    def inspect(
        self, image: np.ndarray, source: str = ..., bit_depth: int | None = ...
    ) -> Inspection: ...


@dataclass(frozen=True)
class ActiveEngine:
    """A loaded engine that passed its golden samples, and since when it judges parts."""

    inspector: PartInspector
    info: EngineInfo
    signer: str | None = None  # key id of its signature; None for an unsigned folder
    since_ns: int = 0  # monotonic ns: parts triggered at or after this go to it
    since_wall: float | None = None  # the same moment, wall clock (None: since start-up)


class EngineSlot:
    """Which engine judges a part, by its trigger time (see the module docstring)."""

    def __init__(self, engine: ActiveEngine) -> None:
        self._lock = threading.Lock()
        self._engines = [engine]  # ascending since_ns; more than one only around a switch

    @property
    def current(self) -> ActiveEngine:
        """The newest engine: the one parts triggered from now on go to."""
        with self._lock:
            return self._engines[-1]

    def for_trigger(self, trigger_ns: int) -> ActiveEngine:
        """The engine for a part triggered at `trigger_ns` (monotonic ns)."""
        with self._lock:
            chosen = 0
            for i, engine in enumerate(self._engines):
                if engine.since_ns <= trigger_ns:
                    chosen = i
            del self._engines[:chosen]  # parts come in trigger order: older ones are done
            return self._engines[0]

    def switch(
        self, engine: ActiveEngine, stamp: Callable[[], tuple[int, float]] | None = None
    ) -> ActiveEngine:
        """Hand every part triggered at or after `engine.since_ns` to `engine`, and return it.
        With `stamp` (() -> (monotonic ns, wall s)), the switch time is taken now, under the
        slot's lock: a part triggered after it cannot have been handed the old engine yet.
        ValueError for a switch time before the current engine's."""
        with self._lock:
            if stamp is not None:
                since_ns, since_wall = stamp()
                engine = replace(engine, since_ns=since_ns, since_wall=since_wall)
            if engine.since_ns < self._engines[-1].since_ns:
                raise ValueError("an engine switch cannot go back in time")
            self._engines.append(engine)
            return engine


class EngineSource:
    """Where the daemon's engines come from: the folder in [engine] path, or the engine store
    with [engine] store = true. Raises SignatureError at construction for an unusable trusted
    keys folder."""

    def __init__(self, config: Config) -> None:
        self.config = config
        engine = config.engine
        self.store = EngineStore(config.engine_store_dir) if engine.store else None
        self.trust = TrustedKeys.load(engine.trusted_keys) if engine.trusted_keys else None

    def describe(self) -> str:
        if self.store is not None:
            return f"the engine store {self.store.root}"
        return f"the engine folder {self.config.engine.path}"

    def wanted(self) -> EngineRef | None:
        """The engine the configuration names now: the store's active one; None for a folder
        (whatever it holds). StoreError when the store has no active engine."""
        return None if self.store is None else _active_in(self.store)

    def open(self, ref: EngineRef | None = None) -> ActiveEngine:
        """Verify and load `ref` (default: what the configuration names now) and check its
        golden samples. Raises a PartSightError (StoreError, SignatureError, BundleError,
        InferenceError) saying why it cannot judge parts."""
        engine, signer = self._locate(ref)
        inspector = open_station_engine(engine, self.config)
        active = ActiveEngine(inspector, EngineInfo.of(inspector.bundle, inspector.backend), signer)
        log.info(
            "engine %s loaded from %s, golden samples pass", active.info, inspector.bundle.root
        )
        return active

    def commit(self, ref: EngineRef) -> None:
        """Record `ref` as the store's active engine (it survives a restart)."""
        if self.store is None or self.trust is None:
            raise self._needs_store()
        self.store.activate(ref, self.trust, wait_s=_STORE_WAIT_S)

    def _locate(self, ref: EngineRef | None) -> tuple[Bundle | Path, str | None]:
        """The engine to open: a bundle verified from its signed manifest (store, or a folder
        with trusted keys), else the configured folder; and the signer's key id."""
        if self.store is not None and self.trust is not None:
            verified = self.store.verify(ref or _active_in(self.store), self.trust)
            return verified.bundle, verified.signer
        if ref is not None:
            raise self._needs_store()
        folder = self.config.engine.path
        assert folder is not None  # the configuration has path or store
        if self.trust is None:
            return folder, None
        signer, signed = read_signed_manifest(folder, self.trust)
        return load_bundle(folder, signed), signer

    def _needs_store(self) -> StoreError:
        return StoreError(
            f"this station runs {self.describe()}; activating an engine by name needs "
            "[engine] store = true"
        )


def _active_in(store: EngineStore) -> EngineRef:
    active = store.active()
    if active is None:
        raise StoreError(
            f"no engine is active in {store.root}: install one with "
            "`partsight engine install FILE --activate`"
        )
    return active
