"""Shared fixtures: one tiny synthetic dataset and one tiny engine trained on it, per session.

Tiny on purpose (64x64 parts, a few dozen images, a small network, seconds of training): the
suite checks behaviour, `make demo` and `make bench` check quality and speed at full size.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from trainer.cli import main as train_main
from trainer.fit import FitConfig, FitResult, fit
from trainer.model import DAEConfig
from trainer.synth import PartGenerator, SynthConfig, write_dataset
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


def to_12_bit(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 8-bit image as a Mono12 camera would have seen it, saved the way frame grabbers save
    Mono12: values 0..4095 (the 8-bit value in the top bits, sensor noise in the low four) in a
    16-bit container."""
    return (image.astype(np.uint16) << 4) | rng.integers(0, 16, image.shape, dtype=np.uint16)


@pytest.fixture(scope="session")
def tiny_dataset_12bit(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset's train/good and test/good as 16-bit PNGs holding 12-bit values."""
    root = tmp_path_factory.mktemp("tiny12") / "data"
    rng = np.random.default_rng(12)
    for split in ("train", "test"):
        target = root / split / "good"
        target.mkdir(parents=True)
        for path in sorted((tiny_dataset / split / "good").glob("*.png")):
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            assert cv2.imwrite(str(target / path.name), to_12_bit(image, rng))
    shutil.copy(tiny_dataset / "labels.csv", root / "labels.csv")
    return root


@pytest.fixture(scope="session")
def tiny_engine_12bit(
    tiny_dataset_12bit: Path, tmp_path_factory: pytest.TempPathFactory
) -> FitResult:
    """An engine trained on 12-bit data in 16-bit files (fewer epochs: it is about the pixels
    the engine is given, not its accuracy)."""
    out = tmp_path_factory.mktemp("engine12") / "tiny-12bit"
    config = replace(TINY_FIT, train=replace(TINY_FIT.train, epochs=15), name="tiny12")
    return fit(tiny_dataset_12bit, out, config)


TINY_NUISANCE, TINY_DEFECT = "brightness", "foreign_material"


def write_set(root: Path, counts: dict[str, int], first: int) -> Path:
    """A labelled MVTec-layout folder of the tiny dataset's part family (seed 3)."""
    generator = PartGenerator(SynthConfig(size=TINY_SIZE), 3)
    rows = ["file,split,class,type"]
    for kind, n in counts.items():
        split = "train" if kind == "train_good" else "test"
        name = "good" if kind.endswith("good") else kind
        cls = "good" if name == "good" else ("nuisance" if kind == TINY_NUISANCE else "defect")
        for i in range(n):
            sample = generator.render(
                name, np.random.default_rng([first, zlib.crc32(kind.encode()), i])
            )
            file = f"{split}/{name}/{i:03d}.png"
            (root / file).parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(root / file), sample.image)
            rows.append(f"{file},{split},{cls},{name}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled") / "pool"
    return write_set(root, {"train_good": 12, TINY_NUISANCE: 8, TINY_DEFECT: 8}, first=1)


@pytest.fixture(scope="session")
def tiny_test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled") / "test"
    return write_set(root, {"train_good": 2, "good": 4, TINY_NUISANCE: 6, TINY_DEFECT: 6}, first=2)


@pytest.fixture(scope="session")
def tiny_classified(
    tiny_engine: FitResult, tiny_labelled: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """The tiny engine with a heatmap classifier from 5 labelled images per type of
    tiny_labelled (`partsight-train classify`), and what the command printed."""
    out = tmp_path_factory.mktemp("classified") / "tiny-classified"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = train_main([
            "--no-progress", "classify", "--engine", str(tiny_engine.engine),
            "--labelled", str(tiny_labelled), "--out", str(out), "--per-type", "5",
        ])  # fmt: skip
    assert code == 0
    return out, printed.getvalue()


POSED = SynthConfig(size=(64, 64), frame=(160, 160), random_pose=True, clutter=True)


@pytest.fixture(scope="session")
def posed_engine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FitResult]:
    """(dataset root, engine) for randomly posed parts in 160x160 frames: an engine that
    registers (CPU), trained for two epochs on 16 images (behaviour, not quality)."""
    root = tmp_path_factory.mktemp("posed") / "data"
    write_dataset(root, 16, POSED, seed=5, progress=False)
    config = FitConfig(
        model=DAEConfig(width=4, depth=3, bottleneck=4),
        train=TrainConfig(epochs=2, batch_size=8, seed=0),
        registration_device="cpu",
        show_progress=False,
    )
    return root, fit(root, tmp_path_factory.mktemp("e") / "posed-engine", config)


@pytest.fixture
def fake_tensorrt(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """tests/fakes/tensorrt installed as `tensorrt` (its docstring says what it fakes), with
    its counters and switches reset."""
    from tests.fakes import tensorrt as fake

    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(fake, "BUILDS", 0)
    monkeypatch.setattr(fake, "SCORE_ERROR", {"fp16": 0.0, "fp32": 0.0})
    monkeypatch.setattr(fake, "CURRENT_GPU", fake.CURRENT_GPU)
    monkeypatch.setattr(fake, "__version__", fake.__version__)
    monkeypatch.setattr(fake, "executions", [])
    yield fake
