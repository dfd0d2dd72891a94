"""The shipped unit file and its example drop-in, checked by systemd's own tools:
`systemd-analyze verify` reports nothing and `systemd-analyze security` rates the exposure at
2.0 or better."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD_DIR = Path(__file__).parents[2] / "systemd"
UNIT = SYSTEMD_DIR / "partsight.service"
DROP_IN = SYSTEMD_DIR / "partsight.service.d" / "site.conf.example"
MAX_EXPOSURE = 2.0
SHIPPED_EXEC = "ExecStart=/usr/bin/partsight run --config /etc/partsight/partsight.toml"

pytestmark = pytest.mark.integration


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return tool


def _runnable(text: str) -> str:
    # verify checks that ExecStart's program exists, and the installed partsight does not
    # exist here: point every non-empty ExecStart= at /bin/true, so anything else it reports
    # is a real problem.
    return re.sub(r"^ExecStart=\S.*$", "ExecStart=/bin/true", text, flags=re.MULTILINE)


def _verify(tool: str, unit: Path) -> None:
    result = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, report
    assert report == "", report


def _exposure(tool: str, unit: Path) -> float:
    result = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = result.stdout + result.stderr
    if "offline" in report and ("unrecognized option" in report or "Unknown option" in report):
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", report)
    assert found is not None, report
    return float(found.group(1))


def test_unit_verifies_cleanly(tmp_path: Path) -> None:
    tool = _analyze()
    text = UNIT.read_text()
    assert [line for line in text.splitlines() if line.startswith("ExecStart=")] == [SHIPPED_EXEC]
    copy = tmp_path / UNIT.name
    copy.write_text(_runnable(text))
    _verify(tool, copy)


def test_unit_with_the_example_drop_in_verifies_cleanly(tmp_path: Path) -> None:
    tool = _analyze()
    copy = tmp_path / UNIT.name
    copy.write_text(_runnable(UNIT.read_text()))
    drop_ins = tmp_path / "partsight.service.d"
    drop_ins.mkdir()
    (drop_ins / "site.conf").write_text(_runnable(DROP_IN.read_text()))
    _verify(tool, copy)
    assert _exposure(tool, copy) <= MAX_EXPOSURE


def test_security_exposure_is_low() -> None:
    tool = _analyze()
    exposure = _exposure(tool, UNIT)
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}"
