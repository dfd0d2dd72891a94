"""`partsight inspect` on the inputs users really give it (issue 9's field inputs 4, 5 and 10):
every line has the same keys in input order, and a file that cannot be judged is an ERROR line
in its place, named on stderr, while every other image is judged (exit 1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge.cli import LINE_KEYS, main
from tests.huge_images import write_huge_png
from trainer.fit import FitResult


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], list[str]]:
    code = main(["inspect", *args])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err.splitlines()


def test_errors_are_lines_with_every_key_in_input_order_and_the_rest_is_judged(
    tiny_engine: FitResult, tiny_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    goods = sorted((tiny_dataset / "test" / "good").glob("*.png"))[:3]
    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(goods[1], folder / "a.png")
    broken = folder / "b.png"
    broken.symlink_to(tmp_path / "gone.png")
    shutil.copy(goods[2], folder / "c.PNG")
    (folder / "notes.txt").write_text("not an image")
    huge = write_huge_png(tmp_path / "huge.png", 40000, 30000)
    missing = tmp_path / "missing.png"
    code, lines, errors = run(
        capsys, "--engine", str(tiny_engine.engine), str(huge), str(goods[0]), str(folder),
        str(missing),
    )  # fmt: skip
    assert code == 1  # some inputs unjudged
    assert [line["file"] for line in lines] == [
        str(huge),
        str(goods[0]),
        str(folder / "a.png"),
        str(broken),
        str(folder / "c.PNG"),
        str(missing),
    ]
    for line in lines:  # a consumer can read line["score"] on every line
        assert tuple(line) == LINE_KEYS
    verdicts = [line["verdict"] for line in lines]
    assert verdicts[0] == verdicts[3] == verdicts[5] == "ERROR"
    assert all(v in ("OK", "NOK") for v in (verdicts[1], verdicts[2], verdicts[4]))
    threshold = lines[1]["threshold"]
    assert threshold == pytest.approx(tiny_engine.threshold)
    for line in (lines[0], lines[3], lines[5]):
        assert line["reason"] == "image" and line["threshold"] == threshold
        assert line["score"] is None and line["regions"] is None and line["latency_ms"] is None
    for line in (lines[1], lines[2], lines[4]):
        assert isinstance(line["score"], float) and line["error"] is None
    huge_why = (
        "1,200,000,000 pixels (40000 wide, 30000 high), more than the limit of 100,000,000; "
        "refused before decoding"
    )
    broken_why = f"broken symbolic link (its target {tmp_path}/gone.png does not exist)"
    assert [lines[0]["error"], lines[3]["error"], lines[5]["error"]] == [
        huge_why,
        broken_why,
        "no such file or folder",
    ]
    assert errors == [
        f"partsight: skipped {folder / 'notes.txt'}: not an image file (suffix '.txt')",
        f"partsight: error: {huge}: {huge_why}",
        f"partsight: error: {broken}: {broken_why}",
        f"partsight: error: {missing}: no such file or folder",
    ]


def test_the_pixel_limit_is_an_option(
    tiny_engine: FitResult, tiny_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = sorted((tiny_dataset / "test" / "good").glob("*.png"))[0]
    code, lines, errors = run(
        capsys, "--engine", str(tiny_engine.engine), str(image), "--max-pixels", "4095"
    )
    assert code == 1 and lines[0]["verdict"] == "ERROR" and len(errors) == 1
    assert lines[0]["error"] == (
        "4,096 pixels (64 wide, 64 high), more than the limit of 4,095; refused before decoding"
    )
    code, lines, _ = run(
        capsys, "--engine", str(tiny_engine.engine), str(image), "--max-pixels", "4096"
    )
    assert code == 0 and lines[0]["verdict"] in ("OK", "NOK")


@pytest.mark.parametrize(
    ("value", "why"),
    [("abc", "'abc' is not a number"), ("-1", "'-1' is not a positive finite number"),
     ("0", "'0' is not a positive finite number"), ("nan", "'nan' is not a positive finite")],
)  # fmt: skip
def test_a_threshold_that_would_judge_nothing_is_refused(
    tiny_engine: FitResult, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, why: str
) -> None:
    """Scores are never negative: a threshold of 0 or less would reject every part, NaN or inf
    pass every one; argparse's own message named an internal function."""
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", "--engine", str(tiny_engine.engine), "--threshold", value, str(tmp_path)])
    assert exit_.value.code == 2
    assert f"argument --threshold: {why}" in capsys.readouterr().err
