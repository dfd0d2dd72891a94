"""`partsight-train` on the training sets users really have (issue 9's field inputs 4, 6, 7, 8
and 9): each refused before training with one line naming the problem, or trained, with the
counts said; a failed fit leaves no `<out>.partial/` behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.cli import main

FAST = ["--epochs", "1", "--depth", "3", "--width", "4", "--bottleneck", "4"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--no-progress", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def images(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    return folder


def no_bundle_left(out: Path) -> bool:
    return not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_twenty_identical_images_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field input 6: used to exit 2 with a numpy warning and a multi-line pydantic dump."""
    frame = np.random.default_rng(0).integers(0, 255, (32, 32), np.uint8)
    good = images(tmp_path / "data" / "train" / "good", [frame] * 20)
    out = tmp_path / "engine"
    code, stdout, stderr = run(capsys, "fit", "--data", str(tmp_path / "data"), "--out", str(out))
    assert code == 2 and stdout == ""
    assert stderr == (
        f"partsight-train: error: {good}: all 20 training images are identical: the training "
        "set has no variation to learn (a static scene, or a camera stuck on one frame?)\n"
    )
    assert no_bundle_left(out)


def test_images_smaller_than_the_stride_are_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field input 7: 7x3 images used to train, then die with a torch padding traceback."""
    rng = np.random.default_rng(1)
    good = images(
        tmp_path / "data" / "train" / "good",
        [rng.integers(0, 255, (3, 7), np.uint8) for _ in range(20)],
    )
    out = tmp_path / "engine"
    code, _, stderr = run(capsys, "fit", "--data", str(tmp_path / "data"), "--out", str(out))
    assert code == 2
    assert stderr == (
        f"partsight-train: error: {good}: images are 3x7 (HxW), smaller than the network's "
        "stride (16 px at depth 4); use larger images, --size, or a smaller --depth\n"
    )
    assert no_bundle_left(out)


def test_a_broken_link_in_the_training_set_is_named(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field input 4: `fit` used to skip it without a word."""
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset / "train", data / "train")
    link = data / "train" / "good" / "0005b.png"
    link.symlink_to(tmp_path / "moved" / "0005b.png")
    out = tmp_path / "engine"
    code, _, stderr = run(capsys, "fit", "--data", str(data), "--out", str(out), *FAST)
    assert code == 2
    assert stderr == (
        f"partsight-train: error: {link}: broken symbolic link (its target "
        f"{tmp_path}/moved/0005b.png does not exist)\n"
    )
    assert no_bundle_left(out)


def test_a_small_short_training_passes_its_parity_check_and_says_its_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field inputs 8 and 4: `synth --count 8 --size 256x256`, `fit --epochs 2` used to fail
    the ONNX parity check (an absolute map tolerance on a map whose scale is in the tens);
    `fit` now says how many images it trained and validated on."""
    data, out = tmp_path / "data", tmp_path / "engine"
    code, _, _ = run(capsys, "synth", str(data), "--count", "8", "--size", "256x256")
    assert code == 0
    code, stdout, stderr = run(
        capsys, "fit", "--data", str(data), "--out", str(out), "--epochs", "2"
    )
    assert (code, stderr) == (0, "")
    lines = stdout.splitlines()
    assert lines[0] == "data: 8-bit images; trained on 4 images, validated on 4"
    assert lines[1].startswith(f"engine: {out}  threshold: ")
    assert (out / "manifest.json").is_file() and not (tmp_path / "engine.partial").exists()


def test_a_fit_that_fails_after_training_leaves_no_partial_bundle(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field input 8: a failed fit used to leave `<out>.partial/` behind. (And field input 6's
    sibling: a manifest the trainer cannot write is one line, not pydantic's multi-line dump.)"""
    out = tmp_path / "engine"
    code, _, stderr = run(
        capsys, "fit", "--data", str(tiny_dataset), "--out", str(out), "--name", "my engine",
        *FAST,
    )  # fmt: skip
    assert code == 2
    assert stderr == (
        "partsight-train: error: Manifest: name: String should match pattern "
        "'^[A-Za-z0-9._-]+$' (got 'my engine')\n"
    )
    assert no_bundle_left(out)


def test_size_is_height_by_width_as_documented(
    tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field input 9: `--size 48x40` was read as width x height although --help and the README
    say HxW. One convention for every size option: synth's too."""
    out = tmp_path / "engine"
    code, _, stderr = run(
        capsys, "fit", "--data", str(tiny_dataset), "--out", str(out), "--size", "48x40", *FAST
    )
    assert (code, stderr) == (0, "")
    spec = json.loads((out / "manifest.json").read_text())["input"]
    assert (spec["height"], spec["width"]) == (48, 40)
    code, _, _ = run(capsys, "synth", str(tmp_path / "s"), "--count", "8", "--size", "48x40")
    assert code == 0
    first = cv2.imread(str(next((tmp_path / "s" / "train" / "good").iterdir())))
    assert first.shape[:2] == (48, 40)
    for command, text in [("fit", "model input HxW"), ("synth", "part view HxW")]:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert text in capsys.readouterr().out
