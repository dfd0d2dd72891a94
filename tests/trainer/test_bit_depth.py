"""Engines trained on 12-bit data in 16-bit files (issue 9's field input 1): fit says what it
found, the manifest records it, the engine reads files of its depth as such, and an image of
another depth is converted (8-bit) or refused with the reason (values beyond 12 bits). The same
pixels from the pylon camera emulation in Mono12: tests/integration/test_bit_depth_camera.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.bundle import load_bundle
from edge.errors import ImageError
from edge.inspector import Inspection, Inspector, inspect_files
from trainer.fit import FitResult


def judge(inspector: Inspector, path: Path) -> Inspection | ImageError:
    [(_, outcome)] = list(inspect_files(inspector, [path]))
    return outcome


def test_fit_says_12_bit_and_the_manifest_records_it(tiny_engine_12bit: FitResult) -> None:
    assert tiny_engine_12bit.bit_depth.note == "values never exceed 4095: 12-bit data"
    assert load_bundle(tiny_engine_12bit.engine).manifest.input.bit_depth == 12
    Inspector.open(tiny_engine_12bit.engine).check_golden()  # its 12-bit golden files


def test_a_12_bit_file_is_judged_on_the_full_scale(
    tiny_engine_12bit: FitResult, tiny_dataset_12bit: Path
) -> None:
    """The file's values are shifted up 4 bits, as the camera adapter shifts Mono12: the model
    sees what it saw in training, and a good part comes out OK."""
    inspector = Inspector.open(tiny_engine_12bit.engine)
    path = sorted((tiny_dataset_12bit / "test" / "good").glob("*.png"))[0]
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and 1023 < stored.max() <= 4095
    result = judge(inspector, path)
    assert isinstance(result, Inspection) and result.model_input is not None
    assert np.allclose(result.model_input[0], (stored.astype(np.float32) * 16) / 65535)
    assert result.verdict == "OK"


def test_files_of_another_depth_are_converted_or_refused(
    tiny_engine_12bit: FitResult, tiny_dataset_12bit: Path, tmp_path: Path
) -> None:
    inspector = Inspector.open(tiny_engine_12bit.engine)
    path = sorted((tiny_dataset_12bit / "test" / "good").glob("*.png"))[0]
    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    want = judge(inspector, path)
    assert isinstance(want, Inspection) and want.score is not None
    eight = tmp_path / "eight.png"  # the same scene from an 8-bit camera: converted
    cv2.imwrite(str(eight), (stored >> 4).astype(np.uint8))
    got = judge(inspector, eight)
    assert isinstance(got, Inspection) and got.score is not None
    assert got.verdict == want.verdict and got.score == pytest.approx(want.score, rel=0.25)
    full = tmp_path / "full16.png"  # full-range 16-bit data: not what the engine knows
    cv2.imwrite(str(full), stored << 4 | 15)
    refused = judge(inspector, full)
    assert isinstance(refused, ImageError)
    assert str(refused) == (
        f"{full}: values reach {int(stored.max()) << 4 | 15}, more than 12-bit data holds "
        "(0..4095), the depth the engine was trained on"
    )


def test_a_12_bit_file_on_an_8_bit_engine_is_refused_with_the_likely_cause(
    tiny_engine: FitResult, tiny_dataset_12bit: Path
) -> None:
    """Field input: 12-bit data in a 16-bit file judged by an engine trained on 8-bit images
    was read as near-black 16-bit data and rejected as an anomaly, without a word on why."""
    path = sorted((tiny_dataset_12bit / "test" / "good").glob("*.png"))[0]
    result = judge(Inspector.open(tiny_engine.engine), path)
    assert isinstance(result, ImageError)
    assert "values stay below 4096 (peak" in str(result) and "12-bit data?" in str(result)
    assert "save it as 8 bits, or fit an engine on such files" in str(result)
