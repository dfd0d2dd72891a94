"""`partsight monitor RESULTS...`: a results log replayed through the line's own monitors.

RESULTS are files of JSON lines ("-" for standard input): the lines `partsight inspect` prints,
or a capture of the `result` topic's payloads (e.g. `mosquitto_sub -t '…/result' > log`). A
capture may hold the same part twice (a result re-sent after a broker outage): a part id not
above the last one read is skipped. A change of engine in the log resets the baselines, as on
the line. Each alert the monitors would have raised or cleared is printed as it happens:

    part 1342 2024-05-01T03:12:09.412000Z  RAISED warning brightness: image brightness down
      12 % over the last 340 parts (0.362, usually 0.412) — started at part 1003

`--plot DIR` draws every metric that alerted with its chart, limits and alerts (PNG, needs
matplotlib). Exit codes: 0 every line read; 1 some lines could not be read (each named on
stderr, the others replayed); 2 the command failed (a file that cannot be opened, a bad
configuration, matplotlib missing for --plot).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edge.config.loader import load_section
from edge.config.monitor import MonitorConfig
from edge.monitor.alerts import AlertEvent, alert_payload
from edge.monitor.monitor import Monitor
from edge.monitor.observation import ObservationError, PartObservation

EXIT_OK, EXIT_UNREADABLE, EXIT_FAILED = 0, 1, 2


@dataclass
class Trace:
    """Per metric, per part: (index, value, statistic, limit), for the plots."""

    points: dict[str, list[tuple[int, float | None, float | None, float | None]]] = field(
        default_factory=dict
    )
    events: list[tuple[int, AlertEvent]] = field(default_factory=list)
    part_ids: list[int] = field(default_factory=list)

    def add(self, index: int, part_id: int, monitor: Monitor) -> None:
        self.part_ids.append(part_id)
        for name, (value, statistic, limit) in monitor.readings().items():
            self.points.setdefault(name, []).append((index, value, statistic, limit))


@dataclass
class Replay:
    parts: int = 0
    skipped: int = 0  # duplicates
    unreadable: int = 0
    events: list[AlertEvent] = field(default_factory=list)
    monitor: Monitor | None = None
    trace: Trace | None = None


def replay(
    sources: list[tuple[str, TextIO]],
    config: MonitorConfig,
    deadline_ms: float | None,
    *,
    out: TextIO,
    err: TextIO,
    as_json: bool = False,
    trace: bool = False,
) -> Replay:
    """Feed every record of `sources` (name, open text) to one Monitor, printing each alert
    event on `out` as it comes and each unreadable line on `err`."""
    result = Replay(trace=Trace() if trace else None)
    engine: str | None = None
    last_id: int | None = None
    for name, number, record in _records(sources, result, err):
        try:
            obs = PartObservation.read(record, result.parts + result.skipped + 1)
        except ObservationError as exc:
            result.unreadable += 1
            print(f"{name}:{number}: {exc}", file=err)
            continue
        if last_id is not None and obs.part_id <= last_id and "schema" in record:
            result.skipped += 1  # a duplicate (re-sent) result
            continue
        last_id = obs.part_id
        key = _engine(record)
        if result.monitor is None:
            engine = key
            result.monitor = Monitor(config, engine=engine, deadline_ms=deadline_ms)
        elif key != engine:
            print(f"part {obs.part_id}: engine {key} (was {engine}): baselines reset", file=out)
            _print(result.monitor.reset(key), out, as_json, result)
            engine = key
        result.parts += 1
        events = result.monitor.observe(obs)
        if result.trace is not None:
            result.trace.add(result.parts, obs.part_id, result.monitor)
            result.trace.events.extend((result.parts, e) for e in events)
        _print(events, out, as_json, result)
    return result


def _records(
    sources: list[tuple[str, TextIO]], result: Replay, err: TextIO
) -> Iterator[tuple[str, int, Any]]:
    for name, handle in sources:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield name, number, json.loads(line)
            except ValueError as exc:
                result.unreadable += 1
                print(f"{name}:{number}: not JSON: {exc}", file=err)


def _engine(record: Any) -> str | None:
    engine = record.get("engine")
    if isinstance(engine, dict):  # a result payload: {"name": ..., "version": ...}
        return f"{engine.get('name')}@{engine.get('version')}"
    return None if engine is None else str(engine)  # an inspect line: "name@version"


def _print(events: Any, out: TextIO, as_json: bool, result: Replay) -> None:
    for event in events:
        result.events.append(event)
        if as_json:
            print(json.dumps(alert_payload(event, ""), allow_nan=False), file=out)
            continue
        alert = event.alert
        where = f"part {event.part_id}" if event.part_id is not None else "at the end"
        when = f" {event.time}" if event.time else ""
        line = f"{where}{when}  {event.kind.upper()} {alert.severity} {alert.metric}: "
        line += event.message
        if event.kind == "raised" and alert.started_part is not None:
            line += f" — started at part {alert.started_part}"
        print(line, file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="partsight monitor",
        description="replay a results log through the line's monitors; print the alerts",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results", nargs="+", metavar="RESULTS", help="JSON-lines files ('-': standard input)"
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help="take [monitor] and the deadline from here"
    )
    parser.add_argument(
        "--deadline-ms", type=float, help="for latency_p99 (default: the config's, else off)"
    )
    parser.add_argument("--plot", type=Path, metavar="DIR", help="draw each alerted metric here")
    parser.add_argument("--json", action="store_true", help="print alert payloads as JSON lines")


def run(args: argparse.Namespace) -> int:
    from edge.config import ConfigError

    if not vars(args).get("verbose"):  # each alert is printed already; the log would repeat it
        logging.getLogger("edge.monitor.monitor").setLevel(logging.ERROR)

    try:
        config, deadline = _settings(args.config)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_FAILED
    if args.deadline_ms is not None:
        deadline = args.deadline_ms
    if args.plot is not None:
        from edge.monitor.plot import PlotUnavailable, check_matplotlib

        try:
            check_matplotlib()
        except PlotUnavailable as exc:
            print(f"partsight monitor: {exc}", file=sys.stderr)
            return EXIT_FAILED
    handles: list[tuple[str, TextIO]] = []
    try:
        for name in args.results:
            handles.append((name, sys.stdin if name == "-" else open(name, encoding="utf-8")))  # noqa: SIM115
    except OSError as exc:
        print(f"partsight monitor: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    try:
        result = replay(
            handles,
            config,
            deadline,
            out=sys.stdout,
            err=sys.stderr,
            as_json=args.json,
            trace=args.plot is not None,
        )
    finally:
        for name, handle in handles:
            if name != "-":
                handle.close()
    _summary(result, sys.stderr if args.json else sys.stdout)
    if args.plot is not None and result.trace is not None:
        from edge.monitor.plot import plot_alerts

        for path in plot_alerts(result.trace, args.plot):
            print(f"plot: {path}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_UNREADABLE if result.unreadable else EXIT_OK


def _settings(path: Path | None) -> tuple[MonitorConfig, float | None]:
    if path is None:
        return MonitorConfig.model_validate({"state_file": Path("monitor-state.json")}), None
    monitor = load_section(path, "monitor")
    pipeline = load_section(path, "pipeline")
    return monitor, float(pipeline.deadline_ms)


def _summary(result: Replay, out: TextIO) -> None:
    raised = sum(1 for e in result.events if e.kind == "raised")
    text = f"{result.parts} parts replayed, {raised} alert(s) raised"
    if result.skipped:
        text += f", {result.skipped} duplicate(s) skipped"
    if result.unreadable:
        text += f", {result.unreadable} line(s) unreadable"
    active = [] if result.monitor is None else result.monitor.active()
    text += "; still active at the end: " + (
        "; ".join(a.message for a in active) if active else "none"
    )
    print(text, file=out)
