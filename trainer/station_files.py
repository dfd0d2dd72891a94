"""A line station's configuration file and the daemon's command line, written the way a
technician would write them: for `make demo`'s line, the daemon's benchmarks and its tests (one
place, so the three run the daemon alike)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
EMULATED_SERIAL = "0815-0000"  # the first camera of the pylon emulation
STATION = {"site": "demo", "line": "line-1", "station": "station-1"}


# -- configuration files ------------------------------------------------------------------------


def toml_text(data: Mapping[str, Any]) -> str:
    """TOML for a nested dict of tables with scalar, list and path values (what a station
    configuration needs; no arrays of tables)."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(lines: list[str], path: list[str], data: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path and (scalars or not tables):
        lines += ["", f"[{'.'.join(path)}]"]
    lines += [f"{key} = {_value(value)}" for key, value in scalars.items() if value is not None]
    for key, table in tables.items():
        _table(lines, [*path, key], table)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def station_config(
    *,
    state_dir: Path,
    engine: Path,
    camera: Mapping[str, Any],
    mqtt: Mapping[str, Any] | None = None,
    pipeline: Mapping[str, Any] | None = None,
    log_level: str = "info",
) -> dict[str, Any]:
    """A station configuration (as a dict for toml_text). MQTT is off unless `mqtt` is given."""
    return {
        "station": {**STATION, "state_dir": str(state_dir)},
        "camera": dict(camera),
        "engine": {"path": str(engine)},
        "pipeline": dict(pipeline or {}),
        "mqtt": {"enabled": False} if mqtt is None else dict(mqtt),
        "reject": {"kind": "none"},
        "logging": {"level": log_level, "journald": "off"},
    }


def emulated_camera(frames: Path, size: tuple[int, int], **extra: Any) -> dict[str, Any]:
    """The [camera] table for the pylon emulation replaying `frames` at `size` (W, H)."""
    return {
        "kind": "basler",
        "serial": EMULATED_SERIAL,
        "trigger": "software",
        "pixel_format": "Mono8",
        "roi": [0, 0, size[0], size[1]],
        "emulation_image_dir": str(frames),
        **extra,
    }


def write_config(path: Path, data: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_text(data))
    return path


def daemon_command(config: Path) -> list[str]:
    """The line daemon as `partsight run --config` runs it."""
    return [sys.executable, "-m", "edge.daemon.main", "--config", str(config)]


def daemon_env() -> dict[str, str]:
    """The environment for a daemon on the camera emulation (read by pylon at start-up)."""
    env = dict(os.environ, PYLON_CAMEMU="1", PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)  # not ours to notify
    return env


@contextlib.contextmanager
def daemon_running(
    config: Path, log_path: Path, stop_timeout_s: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """The line daemon on `config` (daemon_command, daemon_env), its output to `log_path`;
    stopped with SIGTERM when the block ends, killed when the block raised or it does not stop
    within `stop_timeout_s`. RuntimeError, with the log's tail, when it exits other than 0."""
    log = log_path.open("wb")
    daemon = subprocess.Popen(
        daemon_command(config), env=daemon_env(), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield daemon
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(stop_timeout_s)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.close()
    if code != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the daemon exited with {code}:\n{tail}")


# -- a loopback port and a broker ---------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on at `host` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    """The broker executable, or None when it is not installed (Debian puts it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
