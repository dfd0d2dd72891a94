"""`partsight`: the edge runtime's command line.

Exit codes: 0 every image judged; 1 some image could not be judged (each named on stderr);
2 the command itself failed (bad arguments, engine that does not load or fails its golden samples).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import cv2

from edge import __version__
from edge.bit_depth import stored_bits, to_full_scale
from edge.cli_help import show_defaults
from edge.config import check_config_main
from edge.errors import ImageError, PartSightError
from edge.images import DEFAULT_MAX_PIXELS, find_images, quiet_opencv, read_image
from edge.inspector import ERROR, Inspection, Inspector, inspect_files
from edge.monitor import replay
from edge.overlay import map_in_frame, overlay_heatmap
from edge.store.cli import add_engine_commands

log = logging.getLogger("partsight")

EXIT_OK, EXIT_UNJUDGED, EXIT_FAILED = 0, 1, 2

# Every `inspect` line has these keys, in this order; null where a value is unknown (an image
# that could not be judged has no score, regions or latency; an unregistered part no score).
LINE_KEYS = (
    "file",
    "engine",
    "verdict",
    "reason",
    "score",
    "threshold",
    "class",
    "class_probability",
    "regions",
    "latency_ms",
    "pose",
    "confidence",
    "error",
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.daemon:  # the daemon sets up its own logging (journald, levels from its config)
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
    quiet_opencv()
    try:
        return int(args.func(args))
    except PartSightError as exc:
        print(f"partsight: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _threshold(text: str) -> float:
    """A score threshold: a positive finite number (NaN or inf would pass every part; scores
    are never negative, so 0 or less would reject every part)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive finite number")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partsight", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"partsight {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.set_defaults(daemon=False)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    inspect = sub.add_parser("inspect", help="judge image files with an engine, one JSON line each")
    inspect.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="image files, or folders searched recursively",
    )
    inspect.add_argument("--engine", required=True, type=Path, help="engine bundle folder")
    inspect.add_argument("--threshold", type=_threshold, help="override the engine's threshold")
    inspect.add_argument(
        "--heatmaps", type=Path, metavar="DIR", help="write a heatmap overlay per image here"
    )
    inspect.add_argument("--batch", type=_positive_int, default=8, help="images per inference call")
    inspect.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=DEFAULT_MAX_PIXELS,
        help="an image with more pixels is refused from its header, before decoding "
        f"(default {DEFAULT_MAX_PIXELS})",
    )
    inspect.set_defaults(func=_inspect)

    run = sub.add_parser("run", help="run the line daemon (camera → verdicts → MQTT)")
    run.add_argument("--config", required=True, type=Path, metavar="FILE")
    run.set_defaults(func=lambda args: _run_daemon(args.config), daemon=True)

    check = sub.add_parser("check-config", help="validate a daemon configuration file")
    check.add_argument("file", type=Path, metavar="FILE")
    check.set_defaults(func=lambda args: check_config_main(args.file))

    actions = add_engine_commands(sub)
    build = actions.add_parser(
        "build", help="build and cache the engine's TensorRT plan ahead of time"
    )
    build.add_argument("--engine", required=True, type=Path, help="engine bundle folder")
    build.add_argument(
        "--config", type=Path, metavar="FILE", help="the station's configuration (its backend)"
    )
    build.set_defaults(func=_engine_build)

    monitor = sub.add_parser(
        "monitor", help="replay a results log through the metric monitors, print the alerts"
    )
    replay.add_arguments(monitor)
    monitor.set_defaults(func=replay.run)
    return show_defaults(parser)


def _engine_build(args: argparse.Namespace) -> int:
    from edge.backends.prebuild import build_plan_main  # TensorRT's imports only when asked

    return build_plan_main(args.engine, args.config)


def _run_daemon(config: Path) -> int:
    from edge.daemon.main import run_main  # the daemon's imports are only paid when it runs

    return run_main(config)


def _inspect(args: argparse.Namespace) -> int:
    inspector = Inspector.open(args.engine, threshold=args.threshold)
    inspector.check_golden()
    manifest = inspector.bundle.manifest
    listing = find_images(args.paths)
    for path, why in listing.skipped:
        print(f"partsight: skipped {path}: {why}", file=sys.stderr)
    if not listing.files:
        raise ImageError(" ".join(map(str, args.paths)), "no image files found")
    if args.heatmaps:
        args.heatmaps.mkdir(parents=True, exist_ok=True)
    engine = f"{manifest.name}@{manifest.version}"
    unjudged = 0
    for path, outcome in inspect_files(inspector, listing.files, args.batch, args.max_pixels):
        if isinstance(outcome, ImageError):
            unjudged += 1
            print(f"partsight: error: {outcome}", file=sys.stderr)
            line = _line(path, engine, verdict=ERROR, reason="image", error=outcome.why)
            line["threshold"] = inspector.threshold
        else:
            line = _line(path, engine, **_result_fields(outcome))
            if outcome.verdict == ERROR:  # the engine could not judge it (its classifier)
                unjudged += 1
                print(f"partsight: error: {path}: {outcome.detail}", file=sys.stderr)
            if args.heatmaps:
                _write_heatmap(args.heatmaps, path, outcome, inspector)
        print(json.dumps(line), flush=True)
    return EXIT_UNJUDGED if unjudged else EXIT_OK


def _line(path: Path, engine: str, **fields: object) -> dict[str, object]:
    """One output line: every key of LINE_KEYS, in that order, null unless given."""
    line: dict[str, object] = dict.fromkeys(LINE_KEYS)
    line.update(file=str(path), engine=engine, **fields)
    return line


def _result_fields(result: Inspection) -> dict[str, object]:
    pose = result.pose
    return {
        "verdict": result.verdict,
        "reason": result.reason,
        "score": result.score,
        "threshold": result.threshold,
        "class": result.defect_class,
        "class_probability": result.class_probability,
        "error": result.detail or None,
        "regions": [r.as_dict() for r in result.regions],
        "latency_ms": {k: round(v, 3) for k, v in result.latency_ms.items()},
        "pose": None if pose is None else {k: round(v, 4) for k, v in vars(pose).items()},
        "confidence": result.confidence,
    }


def _write_heatmap(folder: Path, path: Path, result: Inspection, inspector: Inspector) -> None:
    if result.anomaly_map is None:  # not registered: nothing was scored
        return
    frame = read_image(path)
    bits = stored_bits(frame, None, inspector.bundle.manifest.input.bit_depth)
    frame = to_full_scale(frame, bits, str(path))  # a 12-bit file would look almost black
    amap = result.anomaly_map
    if result.to_frame is not None:
        amap = map_in_frame(amap, result.to_frame, (frame.shape[1], frame.shape[0]))
    picture = overlay_heatmap(
        frame, amap, vmax=2 * inspector.pixel_threshold, regions=result.regions
    )
    # Folders may repeat file names (MVTec: test/<type>/000.png): keep the parent in the name.
    name = f"{path.parent.name}_{path.stem}_{result.verdict}.png"
    cv2.imwrite(str(folder / name), picture)


if __name__ == "__main__":
    sys.exit(main())
