"""Part ids: monotonic per station, never reused, across restarts and crashes.

Consumers drop duplicate results by (station, part_id), so reusing an id after a restart would
silently discard a real part's result. Writing every id to disk would cost an fsync per part;
instead ids are reserved in blocks. The file holds a high-water mark: every id ever handed out
is below it. Before the first id of a new block is handed out, the mark is raised by a whole
block and made durable (write a temporary file, fsync, rename over the old one, fsync the
folder). A restart, clean or not, continues from the stored mark, so it skips at most the rest
of the block that was in use (gaps are fine; repeats are not).

A lock file keeps a second process (a stray manual run) from handing out the same ids.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from edge.errors import PartSightError

log = logging.getLogger(__name__)

DEFAULT_BLOCK = 1000
_HEADER = "partsight-part-ids 1"


class PartIdError(PartSightError):
    """The part-id file cannot be read, written or locked: ids could repeat, so never ignored."""


class PartIdStore:
    """Thread-safe source of part ids for one station, backed by the file at `path`.

    Its folder must exist. Ids start at `first` on a new file. Raises PartIdError when the
    file is unreadable or corrupt (guessing could reuse ids) or another process holds it.
    """

    def __init__(self, path: Path | str, block: int = DEFAULT_BLOCK, first: int = 1) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.path = Path(path)
        self.block = block
        self._lock = threading.Lock()
        self._lock_fd = self._lock_file()
        try:
            stored = self._read()
        except PartIdError:
            os.close(self._lock_fd)
            raise
        self._next = first if stored is None else max(stored, first)
        self._limit = self._next  # nothing reserved yet in this process
        log.info("part ids continue at %d (%s)", self._next, self.path)

    def next(self) -> int:
        """The next part id: larger than every id handed out before, by any run."""
        with self._lock:
            if self._next >= self._limit:
                self._reserve(self._next + self.block)
            value = self._next
            self._next += 1
            return value

    @property
    def reserved_below(self) -> int:
        """The durable high-water mark: a restart continues from here."""
        with self._lock:
            return self._limit

    def close(self) -> None:
        """Release the lock file; the unused rest of the block is skipped by the next run."""
        with self._lock:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> PartIdStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lock_file(self) -> int:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise PartIdError(f"{lock_path}: cannot open part-id lock: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PartIdError(
                f"{self.path}: part ids are in use by another process (is the daemon running?)"
            ) from None
        return fd

    def _read(self) -> int | None:
        try:
            text = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PartIdError(f"{self.path}: cannot read part ids: {exc}") from None
        lines = text.split("\n")
        if len(lines) < 2 or lines[0] != _HEADER or not lines[1].isdigit():
            raise PartIdError(
                f"{self.path}: not a part-id file (corrupt?); refusing to guess where ids "
                "continue. Restore it, or write a mark above every id ever published."
            )
        return int(lines[1])

    def _reserve(self, limit: int) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = f"{_HEADER}\n{limit}\n".encode("ascii")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)  # make the rename itself durable
        except OSError as exc:
            raise PartIdError(f"{self.path}: cannot reserve part ids: {exc}") from exc
        self._limit = limit
        log.debug("reserved part ids below %d", limit)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
