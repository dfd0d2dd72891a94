"""Numba's on-disk cache of compiled registration code, on installs where nothing is writable.

Numba caches compiled functions next to their source (`__pycache__`) or, failing that, in the
user's cache folder (~/.cache/numba). On a read-only install without a writable home (systemd's
ProtectSystem=strict with ProtectHome, a system user) neither exists, and `njit(cache=True)`
fails at import: "cannot cache function '_nms': no locator available for file ...".

- use_cache_dir(folder): the daemon points NUMBA_CACHE_DIR at its state directory before the
  registration is imported, unless the environment already names a cache folder.
- cached_njit(...): numba.njit with cache=True where Numba can cache; where it cannot, the
  function is compiled without the cache (at every start: slower to start, same results) after
  one warning per process. Numba itself is imported only when a function is decorated, so
  importing this module never fixes Numba's configuration early.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

ENV = "NUMBA_CACHE_DIR"
_NO_LOCATOR = "no locator available"  # Numba's RuntimeError when it has nowhere to cache

F = TypeVar("F", bound=Callable[..., Any])


def use_cache_dir(folder: Path) -> Path:
    """Make `folder` Numba's cache folder unless $NUMBA_CACHE_DIR is already set; returns the
    folder Numba will use. Call before the registration is imported (if Numba is imported
    already, its configuration is updated too)."""
    current = os.environ.get(ENV)
    if current:
        return Path(current)
    os.environ[ENV] = str(folder)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # Numba read its environment at import: tell it too
        config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    log.info("Numba caches compiled code in %s", folder)
    return folder


def cached_njit(**options: Any) -> Callable[[F], F]:
    """numba.njit(cache=True, **options), or without the cache (one warning) where Numba has
    nowhere writable to keep it."""

    def decorate(func: F) -> F:
        from numba import njit

        try:
            return njit(cache=True, **options)(func)
        except RuntimeError as exc:
            if _NO_LOCATOR not in str(exc):
                raise
            _warn_no_cache()
            return njit(cache=False, **options)(func)

    return decorate


@functools.lru_cache(maxsize=1)
def _warn_no_cache() -> None:
    log.warning(
        "Numba has nowhere writable to cache compiled code (the install is read-only and "
        "there is no writable home or %s): registration code is compiled at every start",
        ENV,
    )
