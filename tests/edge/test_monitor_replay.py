"""`partsight monitor RESULTS`: a results log replayed through the same monitors, offline."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.cli import main as partsight
from tests.edge.monitor_stream import Line, parts

LINE = Line()


def dimming_log(path: Path, extra: list[str] | None = None) -> Path:
    """800 good parts, the lamp dimming 1 % per 50 parts for 400, a new lamp for 400."""
    rng = np.random.default_rng(0)
    lines = [json.dumps(p) for p in parts(LINE, 1, 800, rng)]
    for i in range(400):
        line = replace(LINE, brightness=LINE.brightness * (1 - 0.01 * i / 50))
        lines += [json.dumps(p) for p in parts(line, 801 + i, 1, rng)]
    lines += [json.dumps(p) for p in parts(LINE, 1201, 400, rng)]
    path.write_text("\n".join(lines + (extra or [])) + "\n")
    return path


def test_the_alerts_the_line_would_have_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = dimming_log(tmp_path / "results.jsonl")
    assert partsight(["monitor", str(log)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3, out
    assert (
        out[0].startswith("part 8") and "RAISED warning brightness: image brightness down" in out[0]
    )
    assert "— started at part 8" in out[0] and "Z  RAISED" in out[0]
    assert "CLEARED warning brightness: image brightness back in control" in out[1]
    assert out[2] == ("1600 parts replayed, 1 alert(s) raised; still active at the end: none")


def test_unreadable_lines_are_named_and_the_rest_replayed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resent = json.dumps(next(parts(LINE, 1590, 1, np.random.default_rng(1))))
    log = dimming_log(tmp_path / "results.jsonl", ["{not json", resent, '{"verdict": "MAYBE"}'])
    assert partsight(["monitor", str(log)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{log}:1601: not JSON: Expecting property name enclosed in double quotes: line 1 "
        "column 2 (char 1)",
        f"{log}:1603: not a line of partsight inspect: verdict 'MAYBE' is not OK, NOK or ERROR",
    ]
    assert captured.out.splitlines()[-1].startswith(
        "1600 parts replayed, 1 alert(s) raised, 1 duplicate(s) skipped, 2 line(s) unreadable"
    )


def test_json_output_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = dimming_log(tmp_path / "results.jsonl")
    assert partsight(["monitor", str(log), "--json", "--plot", str(tmp_path / "plots")]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    assert [(e["event"], e["alert"]["metric"]) for e in events] == [
        ("raised", "brightness"),
        ("cleared", "brightness"),
    ]
    assert events[0]["schema"] == "partsight.alert/1"
    png = tmp_path / "plots" / "brightness.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert f"plot: {png}" in captured.err


def test_plots_without_matplotlib_say_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    log = dimming_log(tmp_path / "results.jsonl")
    assert partsight(["monitor", str(log), "--plot", str(tmp_path / "plots")]) == 2
    assert capsys.readouterr().err == (
        "partsight monitor: --plot needs matplotlib: pip install matplotlib "
        "(or partsight[trainer])\n"
    )


def test_the_monitor_section_of_a_daemon_config_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = dimming_log(tmp_path / "results.jsonl")
    config = tmp_path / "partsight.toml"
    config.write_text(
        "[monitor.metrics.brightness]\nenabled = false\n[pipeline]\ndeadline_ms = 45\n"
    )
    assert partsight(["monitor", str(log), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "brightness" not in out
    assert "RAISED critical latency_p99: latency p99" in out  # 40 ± 5 ms against 45 ms
    config.write_text("[monitor.cusum]\nh = -5.0\n")
    assert partsight(["monitor", str(log), "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"{config}: monitor.cusum.h: Input should be greater than 0 (got -5.0)\n"
    )


def test_lines_of_partsight_inspect_are_replayed_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(3)
    lines = []
    for i in range(900):
        x = 100.0 + rng.normal(0, 1.0) + (4.0 if i >= 600 else 0.0)
        lines.append(
            {
                "file": f"frames/{i:04d}.png",
                "engine": "tiny@0.1.0",
                "verdict": "OK",
                "reason": "",
                "score": float(np.exp(rng.normal(0, 0.1))),
                "threshold": 1.6,
                "regions": [],
                "latency_ms": {"register": 3.0},
                "pose": {"x": x, "y": 80.0 + rng.normal(0, 1.0), "angle_deg": 0.0, "scale": 1.0},
                "confidence": 0.95,
            }
        )
    log = tmp_path / "inspect.jsonl"
    log.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert partsight(["monitor", str(log)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("part 6")  # the line index stands for the id
    assert "RAISED warning pose_x: part position x up" in out[0]
    assert "; still active at the end: part position x up " in out[1]


def test_a_missing_file_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert partsight(["monitor", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err == (
        f"partsight monitor: cannot read {tmp_path / 'nope.jsonl'}: No such file or directory\n"
    )
