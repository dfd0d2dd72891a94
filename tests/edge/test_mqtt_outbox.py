"""The disk-backed outbox: durable on return, in order, thread-safe, loud when unusable."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.mqtt.errors import OutboxError
from edge.mqtt.outbox import SCHEMA_VERSION, Outbox

REPO = Path(__file__).resolve().parents[2]

# A writer that puts messages as fast as it can and prints each id once `put` has returned.
WRITER = """
import sys
from edge.mqtt.outbox import Outbox
outbox = Outbox(sys.argv[1])
i = 0
while True:
    row_id = outbox.put("partsight/s/l/st/result", b"part-%d" % i)
    print(row_id, i, flush=True)
    i += 1
"""


def test_messages_put_before_sigkill_are_all_there_in_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    confirmed: list[tuple[int, int]] = []
    try:
        for line in writer.stdout:
            row_id, part = line.split()
            confirmed.append((int(row_id), int(part)))
            if len(confirmed) == 150:
                break
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-stream: it is inside its next put
        writer.wait()
    assert len(confirmed) == 150

    with Outbox(path) as outbox:
        rows = outbox.pending(1000)
    # Every put that returned is there, in order. The writer may have got a few puts ahead of
    # the lines read here before it was killed: those are there too, in order, with no gap.
    assert [(m.id, m.payload) for m in rows[:150]] == [
        (row_id, b"part-%d" % part) for row_id, part in confirmed
    ]
    assert [m.payload for m in rows[150:]] == [b"part-%d" % i for i in range(150, len(rows))]
    assert [m.id for m in rows] == sorted(m.id for m in rows)


def test_put_pending_ack(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as outbox:
        ids = [outbox.put("a/result", b"%d" % i, qos=1, retain=(i == 2)) for i in range(5)]
        assert len(outbox) == 5
        first = outbox.pending(2)
        assert [m.id for m in first] == ids[:2]
        assert first[0].topic == "a/result" and first[0].qos == 1 and first[0].retain is False
        assert first[0].created > 0
        assert outbox.pending(10, after_id=ids[1])[0].retain is True  # ids[2]
        assert [m.payload for m in outbox.pending(10, after_id=ids[2])] == [b"3", b"4"]

        outbox.ack(ids[0])
        outbox.ack_many([ids[2], ids[3], 999])  # an unknown id is ignored
        assert [m.id for m in outbox.pending(10)] == [ids[1], ids[4]]
        assert len(outbox) == 2


def test_ids_are_never_reused_so_order_survives_an_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as outbox:
        last = outbox.put("t", b"x")
        outbox.ack(last)
        assert len(outbox) == 0
    with Outbox(path) as outbox:
        # A reused id would hide the new row from a sender asking for "after the last I sent".
        assert outbox.put("t", b"y") > last
        assert outbox.oldest_created() is not None


def test_puts_are_fsynced_and_acks_are_not(tmp_path: Path) -> None:
    """The documented durability choice: synchronous=FULL for puts (2 in SQLite's numbering)."""
    with Outbox(tmp_path / "o.db") as outbox:
        outbox.ack_many([outbox.put("t", b"x")])
        db = outbox._db  # a peek at the connection to check the setting that matters
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError):
        Outbox(tmp_path / "p.db", synchronous="OFF")


def test_concurrent_put_and_ack(tmp_path: Path) -> None:
    total = 400
    # NORMAL: this test is about the lock, not the disk, and should not spend 400 fsyncs.
    outbox = Outbox(tmp_path / "o.db", synchronous="NORMAL")
    acked: list[int] = []
    errors: list[BaseException] = []

    def producer() -> None:
        try:
            for i in range(total):
                outbox.put("t", b"%d" % i)
        except BaseException as exc:
            errors.append(exc)

    def consumer() -> None:
        try:
            last = 0
            while len(acked) < total:
                rows = outbox.pending(7, after_id=last)
                if rows:
                    outbox.ack_many(m.id for m in rows)
                    acked.extend(int(m.payload) for m in rows)
                    last = rows[-1].id
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert acked == list(range(total))
    assert len(outbox) == 0
    outbox.close()


def test_a_corrupt_database_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, synchronous="NORMAL") as outbox:
        for _ in range(40):
            outbox.put("t", b"p" * 3000)
    data = bytearray(path.read_bytes())
    data[8192 : 8192 + 2048] = b"\xff" * 2048  # scribble over a page in the middle
    path.write_bytes(bytes(data))
    with pytest.raises(OutboxError, match="o.db"):
        Outbox(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"not sqlite at all\n" * 100)
    with pytest.raises(OutboxError, match="not a database"):
        Outbox(path)


@pytest.mark.parametrize("where", ["missing-dir", "is-a-dir"])
def test_an_unusable_path_is_refused(tmp_path: Path, where: str) -> None:
    if where == "missing-dir":
        path = tmp_path / "nowhere" / "o.db"
    else:
        path = tmp_path / "o.db"
        path.mkdir()
    with pytest.raises(OutboxError, match="cannot open outbox"):
        Outbox(path)


def test_a_second_user_of_the_same_outbox_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path), pytest.raises(OutboxError, match="another PartSight process"):
        Outbox(path, timeout_s=0.1)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(OutboxError, match="newer"):
        Outbox(path)


def test_use_after_close_is_an_outbox_error(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    outbox.close()
    with pytest.raises(OutboxError):
        outbox.put("t", b"x")


def test_the_messages_set_aside_are_bounded_keeping_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge.mqtt.outbox as outbox_module

    monkeypatch.setattr(outbox_module, "SET_ASIDE_KEEP", 3)
    with Outbox(tmp_path / "o.db", synchronous="NORMAL") as outbox:
        ids = [outbox.put("t", b"x" * i, 1) for i in range(6)]
        ids.append(outbox.put("t", b"stays pending", 1))
        for message_id in ids[:6]:
            assert outbox.set_aside(message_id, "too big")
        assert outbox.set_aside_ids() == ids[3:6]
        assert [m.id for m in outbox.pending(10)] == ids[6:]
