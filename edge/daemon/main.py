"""`partsight run --config FILE` (and `python -m edge.daemon.main --config FILE`).

Exit codes: 0 a clean stop (SIGTERM, SIGINT, the end of a replay); 1 a fatal runtime error;
2 the configuration, the engine or another start-up resource cannot be used (one line each on
stderr saying why).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from edge.config.check import load_or_report
from edge.daemon.daemon import EXIT_FATAL, EXIT_OK, Daemon
from edge.errors import PartSightError
from edge.images import quiet_opencv
from edge.numba_cache import use_cache_dir
from edge.systemd import setup_logging
from hw.errors import HardwareError

log = logging.getLogger(__name__)

EXIT_STARTUP = 2

__all__ = ["EXIT_FATAL", "EXIT_OK", "EXIT_STARTUP", "main", "run_main"]


def run_main(config_path: Path) -> int:
    """Load the configuration, set up logging, build the daemon and run it until it stops."""
    config = load_or_report(config_path)
    if config is None:
        return EXIT_STARTUP
    setup_logging(config.logging.level, config.logging.journald)
    quiet_opencv()
    # Before the engine's registration is compiled: a read-only install has nowhere else to
    # keep Numba's cache (the unit sets NUMBA_CACHE_DIR itself; a plain `partsight run` may not).
    use_cache_dir(config.station.state_dir / "cache" / "numba")
    try:
        daemon = Daemon(config)
        return daemon.run_forever()
    except (PartSightError, HardwareError) as exc:
        # The engine, the camera settings, the outbox, the part-id file: nothing to retry.
        message = " ".join(str(exc).split())
        log.error("cannot start: %s", message)
        print(f"partsight: cannot start: {message}", file=sys.stderr)
        return EXIT_STARTUP
    except Exception:
        log.exception("the daemon failed")
        return EXIT_FATAL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="partsight run", description="run the inspection daemon on the line"
    )
    parser.add_argument("--config", required=True, type=Path, help="the station's TOML file")
    args = parser.parse_args(argv)
    return run_main(args.config)


if __name__ == "__main__":
    sys.exit(main())
