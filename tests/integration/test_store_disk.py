"""A full disk during an engine install, for real: the station's state directory on a small
tmpfs mounted by the test (root only; elsewhere the test says why it skips, and
tests/edge/test_store.py covers the same path by injecting ENOSPC)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.store import EngineRef, EngineStore
from tests.engine_files import engine_file, make_signer, store_station, trusted_folder
from trainer.fit import FitResult

pytestmark = pytest.mark.integration

SIZE = 4 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if os.geteuid() != 0 or mount is None or umount is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    folder = tmp_path / "state"
    folder.mkdir()
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run([umount, "-l", str(folder)], check=False)


def test_a_full_disk_during_unpack_refuses_the_install_and_keeps_the_store(
    tmp_path: Path,
    tiny_engine: FitResult,
    small_disk: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signer = make_signer(tmp_path / "keys")
    v1 = engine_file(tiny_engine.engine, signer, tmp_path / "files", "0.1.0")
    v2 = engine_file(tiny_engine.engine, signer, tmp_path / "files", "0.2.0")
    config = store_station(tmp_path, trusted_folder(tmp_path / "trusted", signer))
    assert load_config(config).state_dir == small_disk
    store = EngineStore(load_config(config).engine_store_dir)
    assert main(["engine", "install", str(v1), "--activate", "--config", str(config)]) == 0

    # Leave room for the manifest and the small files, not for the model.
    model = (store.root / "tiny" / "0.1.0" / "bundle" / "model.onnx").stat().st_size
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    with filler.open("wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, free.f_bavail * free.f_frsize - model // 2)
    capsys.readouterr()
    code = main(["engine", "install", str(v2), "--activate", "--config", str(config)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == "partsight: error: cannot unpack model.onnx: No space left on device\n"
    assert [i.ref for i in store.installed()] == [EngineRef("tiny", "0.1.0")]
    assert store.active() == EngineRef("tiny", "0.1.0")
    assert list(store.staging_root.iterdir()) == []  # the partial unpack is gone

    filler.unlink()  # room again: the same file installs
    assert main(["engine", "install", str(v2), "--activate", "--config", str(config)]) == 0
    assert store.active() == EngineRef("tiny", "0.2.0")
