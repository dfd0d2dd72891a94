"""The monitor's state file: written atomically, read back tolerantly.

Written as a temporary file in the same folder, fsynced, renamed over the old one and the folder
fsynced, so that a crash or a power cut leaves either the old state or the new one, never half
of one. A file that cannot be read back (corrupt, from a newer version) is set aside as
`<name>.unreadable` and the monitor starts afresh; that is logged, never fatal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write `state` as JSON to `path` atomically. Raises OSError if the disk refuses."""
    data = json.dumps(state, separators=(",", ":"), allow_nan=False).encode("utf-8")
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_state(path: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none or it cannot be read (then set aside)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("monitor: cannot read %s (%s): baselines start afresh", path, exc)
        return None
    try:
        state = json.loads(text)
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        aside = path.with_name(path.name + ".unreadable")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        log.warning("monitor: %s is unreadable (%s), moved to %s: baselines start afresh",
                    path, exc, aside.name)  # fmt: skip
        return None
    return state


def engine_key(name: str, version: str, model_sha256: str | None) -> str:
    """What the state is keyed by: the engine's name, version and model hash."""
    return f"{name}@{version}#{(model_sha256 or 'unknown')[:16]}"
