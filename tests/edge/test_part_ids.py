"""Part ids: monotonic and never reused, across threads, restarts and a SIGKILL."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from edge.part_ids import PartIdError, PartIdStore

ROOT = Path(__file__).parents[2]


def test_ids_increase_and_continue_above_the_block_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "part-ids"
    with PartIdStore(path, block=10) as store:
        ids = [store.next() for _ in range(25)]
        assert ids == list(range(1, 26))
        assert store.reserved_below == 31  # three blocks reserved, each before its first id
    with PartIdStore(path, block=10) as store:
        assert store.next() == 31  # the unused rest of the last block is skipped, not reused


def test_threads_never_get_the_same_id(tmp_path: Path) -> None:
    seen: list[list[int]] = []
    with PartIdStore(tmp_path / "part-ids", block=25) as store:

        def take() -> None:
            seen.append([store.next() for _ in range(300)])

        workers = [threading.Thread(target=take) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    every = [i for ids in seen for i in ids]
    assert len(set(every)) == len(every) == 1200
    assert all(a < b for ids in seen for a, b in itertools.pairwise(ids))


_TAKER = textwrap.dedent(
    """
    import sys, time
    from edge.part_ids import PartIdStore
    store = PartIdStore(sys.argv[1], block=int(sys.argv[2]))
    for _ in range(int(sys.argv[3])):
        print(store.next(), flush=True)
    print("done", flush=True)
    time.sleep(60)  # killed here, holding unused ids of its last block
    """
)


def test_a_killed_process_never_has_its_ids_reused(tmp_path: Path) -> None:
    path = tmp_path / "part-ids"
    handed_out: list[int] = []
    for _ in range(3):  # crash three times in a row
        proc = subprocess.Popen(
            [sys.executable, "-c", _TAKER, str(path), "10", "23"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout is not None
        taken = []
        for line in proc.stdout:
            if line.strip() == "done":
                break
            taken.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        assert len(taken) == 23
        assert not handed_out or taken[0] > max(handed_out)
        handed_out += taken
    with PartIdStore(path, block=10) as store:
        assert store.next() > max(handed_out)
    assert len(set(handed_out)) == len(handed_out)


def test_a_second_process_cannot_take_the_same_ids(tmp_path: Path) -> None:
    path = tmp_path / "part-ids"
    with PartIdStore(path), pytest.raises(PartIdError, match="another process"):
        PartIdStore(path)
    PartIdStore(path).close()  # free again once the first is closed


def test_a_corrupt_file_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "part-ids"
    path.write_text("12")
    with pytest.raises(PartIdError, match="not a part-id file"):
        PartIdStore(path)
    PartIdStore(tmp_path / "fresh").close()  # and the lock was released on the way out
    with PartIdStore(path.with_name("other")) as store:
        assert store.next() == 1
