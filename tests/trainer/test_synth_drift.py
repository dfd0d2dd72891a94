"""Runs of synthetic parts with drifts at known parts (trainer/synth_drift.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.images import read_image
from edge.monitor import frame_stats
from trainer.cli import main as partsight_train
from trainer.synth import SynthConfig
from trainer.synth_drift import Drift, gain, write_run

SMALL = SynthConfig(size=(48, 48))


def test_drift_syntax() -> None:
    assert Drift.parse("lamp:300:0.01") == Drift("lamp", 300, None, 0.01)
    assert Drift.parse("shift:10-20:3") == Drift("shift", 10, 20, 3.0)
    for bad, why in [
        ("lamp:300", "expected KIND:START[-END]:VALUE"),
        ("fog:1:0.1", "expected KIND:START[-END]:VALUE"),
        ("defects:20-10:0.1", "END must follow START"),
        ("defects:0:0.1", "counted from 1"),
        ("lamp:1:1.5", "a fraction in [0, 1]"),
    ]:
        with pytest.raises(ValueError, match=r"drift '.*': .*" + why.replace("[", r"\[")):
            Drift.parse(bad)


def test_the_lamp_dims_on_schedule() -> None:
    lamp = Drift.parse("lamp:101-201:0.01")
    assert gain([lamp], 100) == 1.0 and gain([lamp], 101) == 1.0
    assert gain([lamp], 151) == pytest.approx(0.99) and gain([lamp], 200) == pytest.approx(0.9802)
    assert gain([lamp], 201) == 1.0  # a new lamp


def test_a_run_carries_its_drifts(tmp_path: Path) -> None:
    drifts = [Drift.parse("lamp:21-41:0.1"), Drift.parse("shift:41:3"), Drift.parse("defects:51:1")]
    summary = write_run(
        tmp_path / "run", 60, SMALL, 7, drifts, base_defect_rate=0.0, progress=False
    )
    assert summary.parts == 60 and summary.defects == 10
    rows = list(csv.DictReader((tmp_path / "run" / "run.csv").open()))
    assert [r["file"] for r in rows[:2]] == ["00001.png", "00002.png"]
    assert {r["type"] for r in rows[:50]} == {"good"} and "good" not in {
        r["type"] for r in rows[50:]
    }
    plain = tmp_path / "plain"  # the same parts without the drifts
    write_run(plain, 60, SMALL, 7, [], base_defect_rate=0.0, progress=False)
    drifted = [read_image(tmp_path / "run" / r["file"]) for r in rows]
    same = [read_image(plain / r["file"]) for r in rows]
    assert np.array_equal(drifted[19], same[19])  # before any drift: the very same frame
    # part 40 got 1 − 0.1 × 19/50 of the light
    ratio = frame_stats(drifted[39]).brightness / frame_stats(same[39]).brightness
    assert ratio == pytest.approx(1 - 0.1 * 19 / 50, abs=0.005)  # 8-bit rounding of dark pixels
    # part 41: the lamp is new again, the part lies 3 px to the right
    assert _translation(same[40], drifted[40]) == pytest.approx((3.0, 0.0), abs=0.2)


def _translation(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64))
    return dx, dy


def test_synth_drift_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["--no-progress", "synth", str(out), "--count", "30", "--size", "48"]
    assert partsight_train([*args, "--drift", "lamp:10:0.02", "--drift", "defects:20:0.5"]) == 0
    assert "RunSummary(" in capsys.readouterr().out
    assert len(list(out.glob("*.png"))) == 30
    assert partsight_train([*args, "--drift", "lamp:10"]) == 2
    assert "expected KIND:START[-END]:VALUE" in capsys.readouterr().err
    assert partsight_train([*args, "--drift", "lamp:10:0.02"]) == 2  # not empty any more
    assert f"{out} is not empty" in capsys.readouterr().err
