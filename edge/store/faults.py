"""Crash points: where the store's writers can be made to die, to prove a crash anywhere leaves
the store consistent.

With PARTSIGHT_STORE_FAULT=<point> in its environment, a process running an install,
activation, rollback or removal SIGKILLs itself when it reaches that point, exactly as a power
cut or `kill -9` would stop it there (nothing is flushed, no handler runs). Unset, a point costs
one environment lookup. tests/edge/test_store_crash.py walks every point.

The points, in the order an `engine install --activate` reaches them:

    unpacked        the bundle is unpacked and verified in its private staging folder
    validated       it loaded on this station's backend and passed its golden samples
    staged          its install record is written and synced; nothing is in the store yet
    moving          the engine's name folder exists; the staged folder is not yet moved
    moved           the version folder is in the store (renamed), not yet synced
    pointer-written the new `active` pointer is written to its temporary file, not synced
    pointer-synced  ... synced, not yet renamed over `active`
    pointer-renamed ... renamed over `active` (the commit point), the folder not yet synced
    removing        (engine remove) the version folder is moved out of the store, not deleted
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

FAULT_ENV = "PARTSIGHT_STORE_FAULT"

POINTS = (
    "unpacked",
    "validated",
    "staged",
    "moving",
    "moved",
    "pointer-written",
    "pointer-synced",
    "pointer-renamed",
    "removing",
)


def crash_point(name: str) -> None:
    """SIGKILL this process if $PARTSIGHT_STORE_FAULT names this point."""
    assert name in POINTS, name
    if os.environ.get(FAULT_ENV) == name:
        log.warning("crash point %s: killing this process (%s is set)", name, FAULT_ENV)
        os.kill(os.getpid(), signal.SIGKILL)
