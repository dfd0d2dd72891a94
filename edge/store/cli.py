"""`partsight engine ...`: install, list, activate, roll back and remove this station's engines.

Every action reads the station's configuration (`--config`, default
/etc/partsight/partsight.toml) for its state directory (the store is `<state_dir>/engines`), the
trusted keys ([engine] trusted_keys) and the backend the golden samples must pass on. Exit codes:
0 done; 2 refused or failed, with one line on stderr saying why, and the store as it was.

Run them as the daemon's user (`sudo -u partsight partsight engine ...`) so the daemon can read
what they write. `activate` and `rollback` change what the store names as active; a running
daemon switches on `systemctl reload partsight` (SCADA's `cmd/engine/activate` does both).

`add_engine_commands` returns the group's sub-parsers, so further actions join the same group.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from edge.config import Config
from edge.config.check import load_or_report
from edge.store.errors import StoreError
from edge.store.pointer import EngineRef
from edge.store.signature import TrustedKeys, short_id
from edge.store.store import EngineStore, Installed, Validation

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 2
DEFAULT_CONFIG = Path("/etc/partsight/partsight.toml")
_RELOAD_HINT = "`systemctl reload partsight` switches a running daemon"


def config_parent() -> argparse.ArgumentParser:
    """The `--config` option every engine action takes (a parent parser)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"the station's configuration (default {DEFAULT_CONFIG})",
    )
    return parent


def add_engine_commands(sub: Any) -> Any:
    """Add `engine` and its actions to the top-level sub-parsers `sub`; return the group's own
    sub-parsers (for more actions)."""
    group = sub.add_parser("engine", help="install and choose engines (the engine store)")
    actions = group.add_subparsers(required=True, metavar="ACTION")
    common = [config_parent()]

    install = actions.add_parser(
        "install", parents=common, help="verify a signed engine file and add it to the store"
    )
    install.add_argument("file", type=Path, metavar="FILE", help="<name>-<version>.tar")
    install.add_argument("--activate", action="store_true", help="make it the active engine")
    install.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="install it even if a newer version of the engine is installed",
    )
    install.set_defaults(func=_install)

    listing = actions.add_parser("list", parents=common, help="the installed engines")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(func=_list)

    activate = actions.add_parser("activate", parents=common, help="make an engine active")
    activate.add_argument("engine", type=_ref, metavar="NAME@VERSION")
    activate.set_defaults(func=_activate)

    rollback = actions.add_parser(
        "rollback", parents=common, help="make the previously active engine active again"
    )
    rollback.set_defaults(func=_rollback)

    remove = actions.add_parser("remove", parents=common, help="delete an engine (not the active)")
    remove.add_argument("engine", type=_ref, metavar="NAME@VERSION")
    remove.set_defaults(func=_remove)
    return actions


def _ref(text: str) -> EngineRef:
    try:
        return EngineRef.parse(text)
    except StoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _open(args: argparse.Namespace) -> tuple[Config, EngineStore] | None:
    if args.config == DEFAULT_CONFIG and not DEFAULT_CONFIG.exists():
        print(
            f"{DEFAULT_CONFIG}: cannot read: No such file or directory (not a station? pass "
            "--config FILE)",
            file=sys.stderr,
        )
        return None
    config = load_or_report(args.config)
    if config is None:
        return None
    return config, EngineStore(config.engine_store_dir)


def _trust(config: Config, path: Path) -> TrustedKeys:
    if config.engine.trusted_keys is None:
        raise StoreError(f"{path}: [engine] trusted_keys is not set; engines cannot be verified")
    return TrustedKeys.load(config.engine.trusted_keys)


def _install(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return EXIT_FAILED
    config, store = opened
    trust = _trust(config, args.config)

    def validate(bundle_dir: Path) -> Validation:
        from edge.station_engine import open_station_engine  # loads ONNX Runtime (or TensorRT)

        inspector = open_station_engine(bundle_dir, config)
        backend = f"{inspector.backend.name} {inspector.backend.precision}"
        return Validation(backend, len(inspector.bundle.manifest.golden))

    installed = store.install(
        args.file,
        trust,
        validate,
        allow_downgrade=args.allow_downgrade,
        activate=args.activate,
    )
    record = installed.record
    assert record is not None  # just written
    print(
        f"installed {installed.ref}: signed by key {short_id(record.signer)}, "
        f"{record.golden_samples} golden samples pass on {record.backend}"
        + (f"; active ({_RELOAD_HINT})" if args.activate else "")
    )
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return EXIT_FAILED
    _config, store = opened
    engines = store.installed()
    active = store.active()
    if args.json:
        print(json.dumps([_as_dict(i, i.ref == active) for i in engines], indent=2))
        return EXIT_OK
    if not engines:
        print(f"no engines installed in {store.root}")
        return EXIT_OK
    rows = [("NAME", "VERSION", "SIGNER", "INSTALLED", "ACTIVE", "VALIDATION")]
    for i in engines:
        record, manifest = i.record, i.manifest
        rows.append((
            i.ref.name,
            i.ref.version,
            short_id(record.signer) if record else "?",
            record.installed if record else "?",
            "*" if i.ref == active else "",
            _figures(manifest.validation) if manifest else (i.problem or ""),
        ))  # fmt: skip
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK


def _activate(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return EXIT_FAILED
    config, store = opened
    before = store.active()
    pointer = store.activate(args.engine, _trust(config, args.config))
    print(f"{pointer.active} is active (was {before or 'none'}); {_RELOAD_HINT}")
    return EXIT_OK


def _rollback(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return EXIT_FAILED
    config, store = opened
    before = store.active()
    pointer = store.rollback(_trust(config, args.config))
    print(f"rolled back to {pointer.active} (was {before}); {_RELOAD_HINT}")
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    opened = _open(args)
    if opened is None:
        return EXIT_FAILED
    _config, store = opened
    store.remove(args.engine)
    print(f"removed {args.engine}")
    return EXIT_OK


def _as_dict(installed: Installed, active: bool) -> dict[str, Any]:
    record, manifest = installed.record, installed.manifest
    return {
        "name": installed.ref.name,
        "version": installed.ref.version,
        "active": active,
        "signer": record.signer if record else None,
        "installed": record.installed if record else None,
        "backend": record.backend if record else None,
        "golden_samples": record.golden_samples if record else None,
        "validation": dict(manifest.validation) if manifest else None,
        "problem": installed.problem,
    }


def _figures(validation: dict[str, float | int | None]) -> str:
    return " ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in validation.items()
    )
