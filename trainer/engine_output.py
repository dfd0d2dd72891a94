"""Where a command writes an engine bundle (`fit --out`, `classify --out`), and how it replaces
what is there.

An engine is written to `<out>.partial/` and renamed to `out` once it loads and passes its
golden samples. Replacing `out` deletes it, so `out` must be something the user can lose:
missing, an empty folder, or an engine bundle (it holds a manifest.json). Anything else (a
dataset, a folder with other files, a folder holding one of the command's inputs) is refused
before any work is done, in one line.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from edge.bundle import MANIFEST
from trainer.errors import TrainerError


def check_engine_output(out: Path, inputs: Iterable[Path]) -> None:
    """Raise TrainerError unless `out` may be replaced by a new engine: it must not be, nor
    contain, any of `inputs` (the data or engine the command reads), and must be missing, an
    empty folder or an engine bundle."""
    target = out.resolve()
    for given in inputs:
        source = given.resolve()
        if source == target or target in source.parents:
            raise TrainerError(
                f"--out {out} holds {given}, which this command reads: write the engine to "
                "another folder"
            )
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise TrainerError(f"--out {out} exists and is not a folder: choose another path")
    if (out / MANIFEST).is_file() or not any(out.iterdir()):
        return
    raise TrainerError(
        f"--out {out} is a folder that holds other things than an engine: writing the engine "
        "there would delete them; choose a new or empty folder"
    )


def replace_with(staging: Path, out: Path) -> None:
    """Put the finished bundle `staging` in the place of `out` (checked again: the folder may
    have changed during training)."""
    check_engine_output(out, [])
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
