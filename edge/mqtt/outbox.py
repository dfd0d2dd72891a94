"""A disk-backed outbox: every durable MQTT message is written here before it is sent, and
deleted only when the broker has acknowledged it.

SQLite in WAL mode. A `put` is committed with `synchronous=FULL`: the WAL is fsynced before
`put` returns, so a result survives the daemon being SIGKILLed and, as far as the disk honours
fsync, a power cut. (`NORMAL` would survive a SIGKILL too but may roll back the last commits
on power loss.) Acks are committed with `synchronous=NORMAL`: losing an ack to a power cut only
means the message is sent again, a duplicate that consumers drop by (station, part_id); the
next `put` fsyncs the WAL and makes earlier acks durable as well.

The database is opened in exclusive locking mode, so a second process (a stray manual run of
the daemon) cannot drain the same outbox and double-send; it gets an OutboxError at open.

Ids come from AUTOINCREMENT, so they are never reused: id order is insertion order even after
the table has been emptied, which lets the sender ask for "rows after the last one I sent".

A message the broker will never take (bigger than its largest packet, refused for good) is *set
aside*: moved, in one transaction, to the `set_aside` table with the reason, so that the messages
behind it flow and it is still on disk for someone to look at (`sqlite3 FILE 'SELECT id, topic,
reason FROM set_aside'`). The table keeps the newest SET_ASIDE_KEEP of them: a station that sets
a message aside at every part must not fill its disk (the publisher counts and logs each one).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.mqtt.errors import OutboxError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: the set_aside table
SET_ASIDE_KEEP = 1000  # messages set aside that stay on disk, the newest

_CREATE = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    retain INTEGER NOT NULL CHECK (retain IN (0, 1)),
    created REAL NOT NULL
)
"""
_CREATE_SET_ASIDE = """
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL,
    reason TEXT NOT NULL,
    set_aside REAL NOT NULL
)
"""

_SYNC_MODES = ("FULL", "NORMAL")


@dataclass(frozen=True)
class Message:
    """One stored message. `created` is wall-clock time (Unix seconds) of the `put`."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created: float


class Outbox:
    """Thread-safe: one connection behind a lock (puts from the pipeline, reads and acks from
    the sender). Every method raises OutboxError when SQLite fails."""

    def __init__(self, path: str | Path, synchronous: str = "FULL", timeout_s: float = 2.0):
        """Open (or create) the outbox at `path`; its directory must exist.

        Raises OutboxError when the file is not a usable outbox: corrupt, not a database,
        unwritable, from a newer schema, or held by another process.
        """
        self.path = Path(path)
        mode = synchronous.upper()
        if mode not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {_SYNC_MODES}, got {synchronous!r}")
        self._put_sync = mode
        self._lock = threading.Lock()
        if not self.path.parent.is_dir():
            raise OutboxError(f"{self.path}: cannot open outbox: directory does not exist")
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is exactly
            # where durability is promised.
            self._db = sqlite3.connect(
                str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot open outbox: {exc}") from exc
        try:
            self._prepare()
        except sqlite3.Error as exc:
            self._db.close()
            hint = " (is another PartSight process using it?)" if "locked" in str(exc) else ""
            raise OutboxError(f"{self.path}: cannot open outbox: {exc}{hint}") from exc
        except OutboxError:
            self._db.close()
            raise
        log.info("outbox %s opened, %s message(s) pending", self.path, len(self))

    def _prepare(self) -> None:
        db = self._db
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        journal = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(journal).lower() != "wal":
            raise OutboxError(
                f"{self.path}: cannot open outbox: the filesystem does not support "
                f"SQLite WAL mode (journal_mode is {journal!r})"
            )
        db.execute(f"PRAGMA synchronous={self._put_sync}")
        check = db.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            detail = "; ".join(str(row[0]) for row in check[:3])
            raise OutboxError(f"{self.path}: outbox database is corrupt: {detail}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(
                f"{self.path}: outbox schema version {version} is newer than this PartSight "
                f"understands ({SCHEMA_VERSION})"
            )
        # A write at open, so an unwritable database fails here rather than on the first result.
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_CREATE)
            db.execute(_CREATE_SET_ASIDE)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Store a message; it is on disk when this returns. Returns its id."""
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
        with self._lock, self._errors("store a message"):
            cur = self._db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, created) VALUES (?, ?, ?, ?, ?)",
                (topic, bytes(payload), qos, int(retain), time.time()),
            )
            row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    def pending(self, limit: int, after_id: int = 0) -> list[Message]:
        """Up to `limit` messages with id > after_id, oldest first."""
        with self._lock, self._errors("read pending messages"):
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, created FROM outbox"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Message(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5]) for r in rows]

    def ack(self, message_id: int) -> None:
        """Delete one message (the broker has it). Unknown ids are ignored."""
        self.ack_many((message_id,))

    def ack_many(self, message_ids: Iterable[int]) -> None:
        """Delete several messages in one transaction."""
        ids = [(i,) for i in message_ids]
        if not ids:
            return
        with self._lock, self._errors("delete acknowledged messages"):
            db = self._db
            db.execute("PRAGMA synchronous=NORMAL")  # why: see the module docstring
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany("DELETE FROM outbox WHERE id = ?", ids)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.execute(f"PRAGMA synchronous={self._put_sync}")

    def set_aside(self, message_id: int, reason: str) -> bool:
        """Move a message the broker will never take to the set_aside table, with why; it is
        no longer pending, and the oldest set aside beyond SET_ASIDE_KEEP are dropped. False if
        there was no such message."""
        with self._lock, self._errors("set a message aside"):
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                moved = db.execute(
                    "INSERT INTO set_aside (id, topic, payload, qos, retain, created, reason,"
                    " set_aside) SELECT id, topic, payload, qos, retain, created, ?, ?"
                    " FROM outbox WHERE id = ?",
                    (reason, time.time(), message_id),
                ).rowcount
                db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
                db.execute(
                    "DELETE FROM set_aside WHERE id NOT IN"
                    " (SELECT id FROM set_aside ORDER BY id DESC LIMIT ?)",
                    (SET_ASIDE_KEEP,),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return moved > 0

    def set_aside_ids(self) -> list[int]:
        """The ids of the messages set aside, oldest first."""
        with self._lock, self._errors("read the messages set aside"):
            rows = self._db.execute("SELECT id FROM set_aside ORDER BY id").fetchall()
        return [int(r[0]) for r in rows]

    def set_aside_reason(self, message_id: int) -> str | None:
        with self._lock, self._errors("read a message set aside"):
            row = self._db.execute(
                "SELECT reason FROM set_aside WHERE id = ?", (message_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def __len__(self) -> int:
        with self._lock, self._errors("count messages"):
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def oldest_created(self) -> float | None:
        """Wall-clock time of the oldest pending message (for an "outbox age" metric)."""
        with self._lock, self._errors("read the oldest message"):
            row = self._db.execute("SELECT MIN(created) FROM outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise OutboxError(f"{self.path}: cannot {doing}: {exc}") from exc
