"""`partsight-train classify` refuses a bad labelled folder with one line naming the row or the
file, before any inference (trainer.labelled)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.cli import main
from trainer.labelled import LabelledSet

GOOD_ROWS = [
    "train/good/000.png,good,good",
    "test/dust/000.png,nuisance,dust",
    "test/scratch/000.png,defect,scratch",
]


def folder(tmp_path: Path, rows: list[str], header: str = "file,class,type") -> Path:
    root = tmp_path / "labelled"
    for name in ("train/good/000.png", "test/dust/000.png", "test/scratch/000.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / name), np.full((8, 8), 100, np.uint8))
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def classify_error(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["classify", "--engine", str(tmp_path / "no-engine"), "--labelled", str(root),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    return err.strip()


def test_a_good_folder_reads_with_its_types(tmp_path: Path) -> None:
    data = LabelledSet.load(folder(tmp_path, GOOD_ROWS))
    assert data.types == {"dust": "nuisance", "scratch": "defect"}
    assert [i.file for i in data.of_class("good")] == ["train/good/000.png"]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            [GOOD_ROWS[0], "test/dust/000.png,,dust", GOOD_ROWS[2]],
            "labels.csv:3: test/dust/000.png: no class (defect, nuisance or good)",
        ),
        (
            [GOOD_ROWS[0], "test/dust/000.png,dirt,dust", GOOD_ROWS[2]],
            "labels.csv:3: test/dust/000.png: unknown class 'dirt' (defect, nuisance or good)",
        ),
        (
            [*GOOD_ROWS, "test/dust/007.png,nuisance,dust"],
            "labels.csv:5: test/dust/007.png: no such image under ",
        ),
        (
            [*GOOD_ROWS, "test/dust/000.png,defect,dust"],
            "labels.csv:5: test/dust/000.png: listed twice (first on line 3)",
        ),
    ],
    ids=["missing class", "unknown class", "missing file", "listed twice"],
)
def test_a_bad_row_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str], expected: str
) -> None:
    line = classify_error(folder(tmp_path, rows), tmp_path, capsys)
    assert line.startswith("partsight-train: error: ")
    assert expected in line


def test_an_image_without_a_label_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = classify_error(folder(tmp_path, GOOD_ROWS[:2]), tmp_path, capsys)
    assert line.endswith(
        "test/scratch/000.png: no row in labels.csv: every image needs a class (defect, "
        "nuisance or good)"
    )


def test_labels_without_a_class_column_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [r.rsplit(",", 2)[0] + "," + r.rsplit(",", 1)[1] for r in GOOD_ROWS]
    line = classify_error(folder(tmp_path, rows, header="file,type"), tmp_path, capsys)
    assert "labels.csv:1: no 'class' column (header: file,type)" in line
