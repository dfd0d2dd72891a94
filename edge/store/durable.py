"""Writing files so that they survive a crash: create exclusively, write, fsync, and fsync the
folder that holds the new name (POSIX says nothing is durable about a rename or a create until
its directory is synced; ext4 and XFS honour an fsync of the directory)."""

from __future__ import annotations

import os
from pathlib import Path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def create_exclusive(path: Path, mode: int = 0o644) -> int:
    """A new file's descriptor, open for writing; FileExistsError if anything is at `path`
    (never follows a symbolic link planted there)."""
    return os.open(path, _CREATE, mode)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_synced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create `path` (it must not exist), write `data` and fsync it. OSError as the OS says."""
    fd = create_exclusive(path, mode)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the names in folder `path` durable (created, renamed or removed entries)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every folder under `root` (files are synced as they are written)."""
    for folder, _dirs, _files in os.walk(root):
        fsync_dir(Path(folder))
