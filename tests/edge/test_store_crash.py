"""`kill -9` of an engine command at every crash point (edge.store.faults) leaves the store
consistent: every engine in it verifies, the pointer names an installed engine, the previous
engine stays active until the pointer's rename commits the new one, and the next command
clears what the dead one left and works.

Each point runs `python -m edge.cli engine ...` as its own process with
PARTSIGHT_STORE_FAULT=<point>, which SIGKILLs itself there. (A SIGKILL keeps what the page cache
holds; what the fsyncs add against a power cut cannot be shown without cutting power.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.store import EngineRef, EngineStore, TrustedKeys
from edge.store.faults import FAULT_ENV, POINTS
from tests.engine_files import engine_file, make_signer, store_station, trusted_folder
from trainer.fit import FitResult

V1, V2 = EngineRef("tiny", "0.1.0"), EngineRef("tiny", "0.2.0")


@dataclass(frozen=True)
class Setup:
    template: Path  # a station folder: tiny@0.1.0 active, tiny@0.2.0 installed when `with_v2`
    trusted: Path
    v2: Path


@pytest.fixture(scope="module")
def setup(tiny_engine: FitResult, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    work = tmp_path_factory.mktemp("crash")
    signer = make_signer(work / "keys")
    trusted = trusted_folder(work / "trusted", signer)
    v1 = engine_file(tiny_engine.engine, signer, work / "files", "0.1.0")
    v2 = engine_file(tiny_engine.engine, signer, work / "files", "0.2.0")
    template = work / "template"
    template.mkdir()
    config = store_station(template, trusted)
    assert main(["engine", "install", str(v1), "--activate", "--config", str(config)]) == 0
    return Setup(template, trusted, v2)


def station(setup: Setup, folder: Path, with_v2: bool) -> tuple[Path, EngineStore]:
    shutil.copytree(setup.template / "state", folder / "state")
    config = store_station(folder, setup.trusted)
    if with_v2:
        assert main(["engine", "install", str(setup.v2), "--config", str(config)]) == 0
    return config, EngineStore(load_config(config).engine_store_dir)


def killed_at(point: str, *args: str) -> None:
    """Run `partsight engine ARGS` and assert it died by SIGKILL at `point`."""
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli", "engine", *args],
        env={**os.environ, FAULT_ENV: point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, f"not killed at {point}: {done.stderr}"


def assert_consistent(store: EngineStore, trust: TrustedKeys) -> None:
    installed = store.installed()
    assert all(i.problem is None for i in installed), installed
    for engine in installed:
        store.verify(engine.ref, trust)  # signature and every hash
    assert store.active() in {i.ref for i in installed}


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_every_step_leaves_the_store_consistent(
    setup: Setup, tmp_path: Path, point: str
) -> None:
    trust = TrustedKeys.load(setup.trusted)
    removing = point == "removing"
    config, store = station(setup, tmp_path, with_v2=removing)
    if removing:
        killed_at(point, "remove", "tiny@0.2.0", "--config", str(config))
    else:
        killed_at(point, "install", str(setup.v2), "--activate", "--config", str(config))

    step = POINTS.index(point)
    in_store = not removing and step >= POINTS.index("moved")
    committed = not removing and step >= POINTS.index("pointer-renamed")
    assert_consistent(store, trust)
    assert [i.ref for i in store.installed()] == ([V1, V2] if in_store else [V1])
    assert store.active() == (V2 if committed else V1)
    # What the dead command left behind is there, until the next command clears it.
    left = [p.name for p in store.staging_root.iterdir()]
    temporary = [p.name for p in store.root.iterdir() if p.name.endswith(".tmp")]
    assert bool(left) == (removing or step < POINTS.index("moved")), left
    assert bool(temporary) == (point in ("pointer-written", "pointer-synced")), temporary

    store.activate(V1, trust)  # the next command
    assert list(store.staging_root.iterdir()) == []
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]
    assert_consistent(store, trust)
    if not in_store:
        assert main(["engine", "install", str(setup.v2), "--config", str(config)]) == 0
    assert [i.ref for i in store.installed()] == [V1, V2]
