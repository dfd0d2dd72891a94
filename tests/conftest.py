"""Shared fixtures: one tiny synthetic dataset and one tiny engine trained on it, per session.

Tiny on purpose (64x64 parts, a few dozen images, a small network, seconds of training): the
suite checks behaviour, `make demo` and `make bench` check quality and speed at full size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.fit import FitConfig, FitResult, fit
from trainer.model import DAEConfig
from trainer.synth import SynthConfig, write_dataset
from trainer.train import TrainConfig

TINY_SIZE = (64, 64)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "data"
    write_dataset(root, 40, SynthConfig(size=TINY_SIZE), seed=3, progress=False)
    return root


TINY_FIT = FitConfig(
    model=DAEConfig(width=8, depth=3, bottleneck=4),
    train=TrainConfig(epochs=50, batch_size=8, learning_rate=3e-3, patch_prob=0.5, seed=0),
    mask="auto",
    name="tiny",
    show_progress=False,
)


@pytest.fixture(scope="session")
def tiny_engine(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> FitResult:
    out = tmp_path_factory.mktemp("engine") / "tiny-engine"
    return fit(tiny_dataset, out, TINY_FIT)
