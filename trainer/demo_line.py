"""The end of `make demo`: the real line daemon on an emulated Basler camera.

A Mosquitto broker on loopback, `python -m edge.daemon.main` running against the pylon camera
emulation (PYLON_CAMEMU) whose ImageFilename replays the test frames, a subscriber printing each
part's result as it arrives, and a summary: parts/s, verdict counts, agreement with the ground
truth. The emulation plays a folder's files in name order and the frame counter counts from 0,
so a result's `camera.frame_counter` says which file the part was.

Also a throw-away broker and a result listener, which the daemon's benchmark shares. The station
configuration and the daemon's command line are trainer.station_files'.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import getpass
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trainer.station_files import (
    LOOPBACK,
    daemon_running,
    emulated_camera,
    free_port,
    mosquitto_binary,
    station_config,
    write_config,
)

log = logging.getLogger(__name__)

# What the pylon camera emulation loads (a subset of what edge.images reads).
EMULATION_SUFFIXES = frozenset({".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"})


# -- a broker -----------------------------------------------------------------------------------


class Mosquitto:
    """A throw-away Mosquitto on a free loopback port (anonymous, no persistence)."""

    def __init__(self, workdir: Path) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 5.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"user {getpass.getuser()}\npersistence false\nallow_anonymous true\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\nlistener {self.port} {LOOPBACK}\n"
        )
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, self.port), 0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} in {timeout_s} s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the results, as they arrive ------------------------------------------------------------------


class ResultListener:
    """Subscribes to every station's results and keeps them (first copy per part id)."""

    def __init__(self, port: int, on_result: Any = None) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Lock()
        self.results: dict[int, dict[str, Any]] = {}
        self.arrivals: list[tuple[float, int]] = []  # (time.monotonic(), part_id), first copies
        self.duplicates = 0
        self._on_result = on_result
        self._subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-listener-{os.getpid()}")
        client.on_connect = lambda c, *_: c.subscribe("partsight/+/+/+/result", qos=1)
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = self._message
        client.connect(LOOPBACK, port, keepalive=30)
        client.loop_start()
        self._client = client
        if not self._subscribed.wait(5.0):
            self.close()
            raise RuntimeError("the result listener could not subscribe")

    def _message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        result = json.loads(msg.payload)
        with self._lock:
            if result["part_id"] in self.results:
                self.duplicates += 1
                return
            self.results[result["part_id"]] = result
            self.arrivals.append((time.monotonic(), result["part_id"]))
        if self._on_result is not None:
            self._on_result(result)

    def snapshot(self) -> dict[int, dict[str, Any]]:
        with self._lock:
            return dict(self.results)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# -- the demo -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    index: int
    label_file: str  # the frame's path as labels.csv names it
    cls: str  # good | defect | nuisance ("?" when not in labels.csv)


def run_line_demo(
    engine: Path, frames: Path, labels_csv: Path, workdir: Path, timeout_s: float = 120.0
) -> str:
    """Run the daemon over every image under `frames` once; return the summary text."""
    # Absolute: the config file resolves relative paths against its own folder.
    workdir, frames, labels_csv = workdir.resolve(), frames.resolve(), labels_csv.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    replay, catalogue, size = _flatten(frames, labels_csv, workdir / "frames")
    broker = Mosquitto(workdir / "broker")
    broker.start()
    config = write_config(
        workdir / "partsight.toml",
        station_config(
            state_dir=workdir / "state",
            engine=engine.resolve(),
            camera=emulated_camera(replay, size),
            mqtt={"host": LOOPBACK, "port": broker.port, "reconnect_max_s": 1.0},
            pipeline={"deadline_ms": 1000, "trigger": {"free_run": True}},
            log_level="warning",
        ),
    )
    count = len(catalogue)
    print(
        f"\n== line: {count} frames through the daemon (pylon camera emulation, MQTT {broker.port})"
    )
    listener = ResultListener(broker.port, on_result=lambda r: print(_line(r, catalogue)))
    started = time.monotonic()
    try:
        with daemon_running(config, workdir / "daemon.log", stop_timeout_s=15) as daemon:
            seen = _wait_all_seen(listener, daemon, count, timeout_s)
    finally:
        time.sleep(0.2)  # the last results in flight reach the listener
        listener.close()
        broker.stop()
    return _summary(listener.snapshot(), catalogue, seen, time.monotonic() - started)


def link_frames(frames: Path, out: Path) -> tuple[list[Path], tuple[int, int]]:
    """The emulation replays one folder in name order: link every image under `frames` (found
    by the one image listing, edge.images) into `out`, numbered in sorted path order. Files the
    emulation cannot load are named and left out. Returns the originals in replay order and the
    size (W, H) of the first, from its header."""
    from edge.images import find_images
    from hw.camera.image_file import read_image_size
    from hw.errors import ImageFileError

    listing = find_images([frames])
    files = [p for p in listing.files if p.suffix.lower() in EMULATION_SUFFIXES]
    for path in sorted(set(listing.files) - set(files)):
        log.warning("%s: left out: the camera emulation does not load %s files", path, path.suffix)
    if not files:
        raise RuntimeError(f"no images under {frames}")
    try:
        width, height = read_image_size(files[0].resolve())
    except ImageFileError as exc:
        raise RuntimeError(str(exc)) from exc
    out.mkdir(parents=True)
    for index, path in enumerate(files):
        os.symlink(path.resolve(), out / f"{index:06d}{path.suffix.lower()}")
    return files, (width, height)


def _flatten(
    frames: Path, labels_csv: Path, out: Path
) -> tuple[Path, list[_Frame], tuple[int, int]]:
    """The frames linked for the emulation, and what each one is according to labels.csv."""
    labels = {row["file"]: row for row in csv.DictReader(labels_csv.open())}
    files, size = link_frames(frames, out)
    catalogue: list[_Frame] = []
    for index, path in enumerate(files):
        name = _relative(path, labels_csv.parent)
        catalogue.append(_Frame(index, name, labels.get(name, {}).get("class", "?")))
    return out, catalogue, size


def _relative(path: Path, root: Path) -> str:
    """`path` as labels.csv under `root` names it: by its own path (a linked file), else by
    where its links lead."""
    if path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.resolve().relative_to(root.resolve()).as_posix()


def _frame_of(result: Mapping[str, Any], catalogue: list[_Frame]) -> _Frame | None:
    camera = result.get("camera")
    if not camera:
        return None
    return catalogue[camera["frame_counter"] % len(catalogue)]


def _line(result: Mapping[str, Any], catalogue: list[_Frame]) -> str:
    frame = _frame_of(result, catalogue)
    score = "  -  " if result["score"] is None else f"{result['score']:6.2f}"
    what = f"{frame.label_file} ({frame.cls})" if frame else "(no frame)"
    total = result["latency_ms"].get("total", 0.0)
    verdict = f"{result['verdict']} {result['reason']}".strip()
    return f"part {result['part_id']:5d}  {verdict:<16} score {score}  {total:6.1f} ms  {what}"


def _wait_all_seen(
    listener: ResultListener, daemon: subprocess.Popen[bytes], count: int, timeout_s: float
) -> dict[int, dict[str, Any]]:
    """Results until every frame was judged once (frame index -> its first result), or until
    the replay is well into its second round (a part with no frame at all, a camera fault,
    never maps to a file)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen: dict[int, dict[str, Any]] = {}
        latest = -1
        for part_id in sorted(results := listener.snapshot()):
            counter = (results[part_id].get("camera") or {}).get("frame_counter")
            if counter is None:
                continue
            latest = max(latest, counter)
            if counter < count:
                seen.setdefault(counter, results[part_id])
        if len(seen) >= count or latest >= count + 10:
            return seen
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited early with {daemon.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"not every frame was judged within {timeout_s:.0f} s")


def _summary(
    results: dict[int, dict[str, Any]],
    catalogue: list[_Frame],
    seen: dict[int, dict[str, Any]],
    wall_s: float,
) -> str:
    ordered = [results[k] for k in sorted(results)]
    first = min(_ts(r["trigger_time"]) for r in ordered)
    last = max(_ts(r["verdict_time"]) for r in ordered)
    rate = len(ordered) / max(last - first, 1e-9)
    # Verdicts once per frame: the replay wraps around while the last results come in.
    once = list(seen.values())
    verdicts = collections.Counter(r["verdict"] for r in once)
    reasons = collections.Counter(r["reason"] for r in once if r["verdict"] != "OK")
    passed = collections.Counter(r["reason"] for r in once if r["verdict"] == "OK" and r["reason"])
    per_class: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    agree = judged = 0
    for index, result in seen.items():
        cls = catalogue[index].cls
        per_class[cls][result["verdict"]] += 1
        if cls in ("good", "defect", "nuisance"):
            judged += 1
            agree += (result["verdict"] == "OK") == (cls != "defect")
    latencies = sorted(r["latency_ms"].get("total", 0.0) for r in ordered)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    lines = [
        "",
        "== line summary",
        f"{len(ordered)} parts in {last - first:.1f} s: {rate:.1f} parts/s "
        f"(trigger-to-verdict p50 {p50:.1f} ms, p99 {p99:.1f} ms; {wall_s:.0f} s with start-up)",
        f"verdicts (each of the {len(once)} frames once): "
        + ", ".join(f"{v} {verdicts[v]}" for v in ("OK", "NOK", "ERROR")),
        "rejected by reason: "
        + (", ".join(f"{k} {n}" for k, n in sorted(reasons.items())) or "none"),
        "passed by reason: " + (", ".join(f"{k} {n}" for k, n in sorted(passed.items())) or "none"),
    ]
    for cls in ("good", "defect", "nuisance"):
        c = per_class.get(cls, collections.Counter())
        lines.append(
            f"{cls:>9}: {sum(c.values()):4d} frames  OK {c['OK']:4d}  NOK {c['NOK']:4d}  "
            f"ERROR {c['ERROR']:3d}"
        )
    lines.append(
        f"verdicts agreeing with ground truth (good and nuisance OK, defect NOK): {agree}/{judged}"
    )
    if len(seen) < len(catalogue):
        lines.append(f"frames without a result that names them: {len(catalogue) - len(seen)}")
    return "\n".join(lines)


def _ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="the line daemon on the camera emulation")
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--frames", type=Path, required=True, help="images, searched recursively")
    parser.add_argument("--labels", type=Path, required=True, help="the dataset's labels.csv")
    parser.add_argument("--workdir", type=Path, default=Path("build/demo/line"))
    args = parser.parse_args(argv)
    print(run_line_demo(args.engine, args.frames, args.labels, args.workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
