"""Waiting for something another thread or process does, without sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll `check` every 10 ms until it is true (True) or `timeout_s` has passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True
