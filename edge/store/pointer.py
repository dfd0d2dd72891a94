"""Which engine is active: the store's `active` pointer, and engine references (`NAME@VERSION`).

The pointer is one small JSON file, replaced atomically: the new content is written to a
temporary file in the same folder and fsynced, renamed over `active` (the commit point: a reader
sees either the old pointer or the new one, whole), and the folder is fsynced so the rename
survives a power cut. It also remembers the engines that were active before (most recent last),
so `engine rollback` can step back.

    {"schema": "partsight.active/1", "active": "tiny@1.2.0", "previous": ["tiny@1.1.0"],
     "switched": "2024-05-01T03:12:44+00:00"}
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.store.durable import fsync_dir, write_all
from edge.store.errors import StoreError
from edge.store.faults import crash_point

log = logging.getLogger(__name__)

POINTER_SCHEMA = "partsight.active/1"
HISTORY = 16  # previous engines remembered for rollback

# The manifest's own patterns (edge.manifest.Manifest), and no leading dot: names are folder
# names in the store, where "." and ".." would escape and dot-names are the store's own.
_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, order=True)
class EngineRef:
    """One installed engine: its name and version."""

    name: str
    version: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise StoreError(f"{self.name!r} cannot be an engine name in the store")
        if not _VERSION.match(self.version):
            raise StoreError(f"{self.version!r} is not an engine version (semantic version)")

    @classmethod
    def parse(cls, text: str) -> EngineRef:
        """`NAME@VERSION`, e.g. `housing-top@1.2.0`; StoreError otherwise."""
        name, at, version = text.partition("@")
        if not at:
            raise StoreError(f"{text!r}: expected NAME@VERSION, e.g. housing-top@1.2.0")
        return cls(name, version)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class _PointerFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_id: str = Field(alias="schema", pattern=r"^partsight\.active/1$")
    active: str
    previous: list[str]
    switched: str


@dataclass(frozen=True)
class Pointer:
    active: EngineRef
    previous: tuple[EngineRef, ...] = ()  # most recent last
    switched: str = ""  # ISO 8601 UTC of the switch

    def to(self, engine: EngineRef) -> Pointer:
        """The pointer after activating `engine`: the current one joins the history."""
        history = [p for p in (*self.previous, self.active) if p != engine][-HISTORY:]
        return Pointer(engine, tuple(history), _now())

    def back(self, installed: set[EngineRef]) -> Pointer | None:
        """The pointer after a rollback to the most recent previous engine still installed;
        None when there is none."""
        history = list(self.previous)
        while history:
            candidate = history.pop()
            if candidate in installed and candidate != self.active:
                return Pointer(candidate, tuple(history), _now())
        return None

    def encode(self) -> bytes:
        document = {
            "schema": POINTER_SCHEMA,
            "active": str(self.active),
            "previous": [str(p) for p in self.previous],
            "switched": self.switched,
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def first_pointer(engine: EngineRef) -> Pointer:
    return Pointer(engine, (), _now())


def read_pointer(path: Path) -> Pointer | None:
    """The pointer at `path`, None when there is none yet; StoreError when it is unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the active pointer: {exc.strerror}") from None
    try:
        raw = _PointerFile.model_validate_json(data)
        return Pointer(
            EngineRef.parse(raw.active),
            tuple(EngineRef.parse(p) for p in raw.previous),
            raw.switched,
        )
    except (ValidationError, StoreError) as exc:
        raise StoreError(f"{path}: the active pointer is damaged ({exc})") from None


def write_pointer(path: Path, pointer: Pointer) -> None:
    """Replace the pointer at `path` atomically and durably (see the module docstring)."""
    folder = path.parent
    temporary = folder / f".{path.name}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)  # left by a crashed process that had our pid
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        try:
            write_all(fd, pointer.encode())
            crash_point("pointer-written")
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point("pointer-synced")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    crash_point("pointer-renamed")
    fsync_dir(folder)
    log.info("active engine is now %s", pointer.active)


def is_pointer_leftover(path: Path, pointer_name: str) -> bool:
    """True for a temporary pointer file a crashed writer left behind."""
    return path.name.startswith(f".{pointer_name}.") and path.name.endswith(".tmp")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
