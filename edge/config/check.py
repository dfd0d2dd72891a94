"""`partsight check-config FILE`: validate a configuration without starting anything."""

from __future__ import annotations

import sys
from pathlib import Path

from edge.config.errors import ConfigError
from edge.config.loader import load_config
from edge.config.model import Config

EXIT_OK, EXIT_INVALID = 0, 2


def load_or_report(path: Path | str) -> Config | None:
    """The configuration, or None after printing every problem as `FILE: section.key: message`
    on stderr (shared by check-config and the daemon's start-up)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return None


def check_config_main(path: Path | str) -> int:
    """Print every problem as `FILE: section.key: message` on stderr and return 2, or
    `FILE: OK` and a one-line summary on stdout and return 0. A backend whose runtime is not
    installed here (kind = "tensorrt" without TensorRT) is a problem too: the daemon would
    not start."""
    config = load_or_report(path)
    if config is None:
        return EXIT_INVALID
    from edge.backends import missing_runtime  # not at import: edge.backends imports edge.config

    missing = missing_runtime(config.engine.backend)
    if missing is not None:
        print(f"{path}: engine.backend.kind: {missing}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{path}: OK")
    print(config.summary())
    return EXIT_OK
