"""Numba's cache on a read-only install (issue 9's field input 12): the hardened unit's
ProtectSystem=strict, no writable home, no NUMBA_CACHE_DIR. Importing the registration used to
fail with "cannot cache function '_nms': no locator available".

The install is a copy of edge/ and hw/ in which Numba can write nothing next to the sources: a
file stands where each `__pycache__` folder would be, and HOME lies under a file, so there is no
~/.cache either. (The suite may run as root, which ignores permission bits: a read-only mode
would prove nothing there, a file in the way stops every user.) Each case runs in a fresh
interpreter, since Numba reads its configuration once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
COMPILE = (
    "import numpy as np\n"
    "from edge.registration.refine import _bilinear\n"
    "print(_bilinear(np.ones((2, 2), np.float32), 0.5, 0.5))\n"
)
WARNING = (
    "Numba has nowhere writable to cache compiled code (the install is read-only and there is "
    "no writable home or NUMBA_CACHE_DIR): registration code is compiled at every start\n"
)


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("read-only-install")
    for package in ("edge", "hw"):
        shutil.copytree(
            ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    for folder in [site, *(p for p in site.rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("a read-only install: nothing can be written here")
    return site


def run(install: Path, tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    (tmp_path / "not-a-folder").write_text("")
    environ.update(PYTHONPATH=str(install), HOME=str(tmp_path / "not-a-folder" / "home"), **env)
    return subprocess.run(  # from tmp_path: `-c` puts the working folder first on sys.path
        [sys.executable, "-c", code],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_a_cache_location_registration_runs_after_one_warning(
    install: Path, tmp_path: Path
) -> None:
    out = run(install, tmp_path, "import edge.registration\n" + COMPILE)
    assert (out.returncode, out.stdout, out.stderr) == (0, "1.0\n", WARNING)


def test_the_daemon_points_numba_at_its_state_directory(install: Path, tmp_path: Path) -> None:
    """run_main sets NUMBA_CACHE_DIR to <state_dir>/cache/numba (the unit's own value) before
    anything is compiled, and compiled code is then cached there without a warning."""
    state = tmp_path / "state"
    (tmp_path / "images").mkdir()
    (tmp_path / "engine").mkdir()  # empty: the daemon stops at start-up, after the setting
    config = tmp_path / "partsight.toml"
    config.write_text(
        f'[station]\nsite = "s"\nline = "l"\nstation = "t"\nstate_dir = "{state}"\n'
        '[camera]\nkind = "replay"\nfolder = "images"\n[engine]\npath = "engine"\n'
        '[mqtt]\nenabled = false\n[reject]\nkind = "none"\n[logging]\njournald = "off"\n'
    )
    code = (
        "import os, sys\nfrom edge.daemon.main import run_main\n"
        f"code = run_main({str(config)!r})\n"
        "print(code, os.environ['NUMBA_CACHE_DIR'])\n" + COMPILE
    )
    out = run(install, tmp_path, code)
    assert out.stdout == f"2 {state / 'cache' / 'numba'}\n1.0\n", out.stderr
    assert WARNING not in out.stderr
    assert list((state / "cache" / "numba").rglob("*.nbi")), "nothing was cached"


def test_a_numba_cache_dir_set_by_the_environment_wins(install: Path, tmp_path: Path) -> None:
    cache = tmp_path / "unit-cache"
    code = (
        "from pathlib import Path\nfrom edge.numba_cache import use_cache_dir\n"
        "print(use_cache_dir(Path('/elsewhere')))\n" + COMPILE
    )
    out = run(install, tmp_path, code, NUMBA_CACHE_DIR=str(cache))
    assert (out.returncode, out.stdout, out.stderr) == (0, f"{cache}\n1.0\n", "")
    assert list(cache.rglob("*.nbi"))
