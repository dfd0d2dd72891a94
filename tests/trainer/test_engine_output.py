"""`fit --out` and `classify --out` never delete what is not an engine: a folder holding the
data, other files, or a file is refused in one line before any training (a new user once lost
a dataset to `fit --data parent/data --out parent`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.cli import main as train_main
from trainer.engine_output import check_engine_output
from trainer.errors import TrainerError


def test_what_may_be_replaced(tmp_path: Path) -> None:
    data = tmp_path / "parent" / "data"
    data.mkdir(parents=True)
    check_engine_output(tmp_path / "new", [data])  # missing
    (tmp_path / "empty").mkdir()
    check_engine_output(tmp_path / "empty", [data])
    engine = tmp_path / "engine"
    engine.mkdir()
    (engine / "manifest.json").write_text("{}")
    (engine / "model.onnx").write_bytes(b"x")
    check_engine_output(engine, [data])  # an engine bundle: replaced


@pytest.mark.parametrize(
    ("out", "why"),
    [
        ("parent", "holds .*parent/data, which this command reads"),
        ("parent/data", "holds .*parent/data, which this command reads"),
        ("notes", "holds other things than an engine"),
        ("notes/keep.txt", "exists and is not a folder"),
    ],
)
def test_what_is_refused(tmp_path: Path, out: str, why: str) -> None:
    data = tmp_path / "parent" / "data"
    data.mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("keep me")
    with pytest.raises(TrainerError, match=why):
        check_engine_output(tmp_path / out, [data])


def test_fit_refuses_to_write_over_its_own_data_and_deletes_nothing(
    tmp_path: Path, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tiny_dataset.parent
    before = sorted(p.relative_to(parent) for p in parent.rglob("*"))
    code = train_main(["--no-progress", "fit", "--data", str(tiny_dataset), "--out", str(parent)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "which this command reads" in err[0]
    assert sorted(p.relative_to(parent) for p in parent.rglob("*")) == before
