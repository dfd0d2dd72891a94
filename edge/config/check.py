"""`partsight check-config FILE`: validate a configuration without starting anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import ValidationError

from edge.config.camera import ReplayCameraConfig, engine_fit
from edge.config.errors import ConfigError
from edge.config.loader import load_config
from edge.config.model import Config
from edge.manifest import Manifest

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
    `FILE: OK`, a one-line summary and the MQTT client id on stdout and return 0.

    Beyond the file itself: a backend whose runtime is not installed here (kind = "tensorrt"
    without TensorRT), and camera frames that do not fit the engine's (channels, size; read from
    the bundle's manifest when there is one to read: the daemon checks the whole bundle), and
    classifier settings for an engine without a classifier, are problems too: the daemon would
    not start. So are a replay camera's files of another size than the engine takes (read from
    their headers): the daemon would start, and judge every such part NOK "image"."""
    config = load_or_report(path)
    if config is None:
        return EXIT_INVALID
    from edge.backends import missing_runtime  # not at import: edge.backends imports edge.config

    missing = missing_runtime(config.engine.backend)
    problems = [] if missing is None else [f"engine.backend.kind: {missing}"]
    manifest = _engine_manifest(_engine_folder(config))
    if manifest is not None:
        problems += [f"camera.{p}" for p in engine_fit(config.camera, manifest.input)]
        problems += _replay_fit(config, manifest)
        problems += _classifier_overrides(config, manifest)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    if problems:
        return EXIT_INVALID
    print(f"{path}: OK")
    print(config.summary())
    if config.mqtt.enabled:
        from edge.mqtt.client_id import client_id

        found = client_id(config.mqtt, config.station, create=False)
        print(f"mqtt client id: {found.value} (from {found.source})")
    return EXIT_OK


def _replay_fit(config: Config, manifest: Manifest) -> list[str]:
    """A replay camera's images whose size (from the file's header) the engine does not take,
    as one `camera.folder: ...` line naming how many and the first; none for another camera."""
    camera = config.camera
    if not isinstance(camera, ReplayCameraConfig):
        return []
    from hw.camera.image_file import list_images, read_image_size
    from hw.errors import ImageFileError

    spec = manifest.input
    files = list_images([camera.folder]).files
    misfits: list[tuple[Path, int, int]] = []
    for file in files:
        try:
            width, height = read_image_size(file)
        except ImageFileError:
            continue  # an unreadable file is that part's ERROR "camera", not a setting
        if not spec.takes(height, width):
            misfits.append((file, height, width))
    if not misfits:
        return []
    path, height, width = misfits[0]
    return [
        f"camera.folder: {len(misfits)} of {len(files)} images are a size the engine does not "
        f"take, e.g. {path}: {height}x{width} (HxW); the engine takes {spec.sizes_taken()} (the "
        'daemon would judge them NOK "image")'
    ]


def _engine_folder(config: Config) -> Path | None:
    """The engine folder the daemon would load: [engine] path, or the store's active engine;
    None when the store has none (the daemon says so at start-up)."""
    if config.engine.path is not None:
        return config.engine.path
    from edge.store import EngineStore, StoreError  # not at import: edge.store imports config

    store = EngineStore(config.engine_store_dir)
    try:
        active = store.active()
        return None if active is None else store.find(active).bundle_dir
    except StoreError:
        return None


def _classifier_overrides(config: Config, manifest: Manifest) -> list[str]:
    """pass_probability / ood_margin set for an engine without a heatmap classifier: the
    daemon refuses to start with it (edge.inspector)."""
    if manifest.classifier is not None:
        return []
    engine = config.engine
    return [
        f"engine.{name}: the engine has no heatmap classifier (drop {name}, or use an engine "
        "made by partsight-train classify)"
        for name, value in (("pass_probability", engine.pass_probability),
                            ("ood_margin", engine.ood_margin))
        if value is not None
    ]  # fmt: skip


def _engine_manifest(bundle: Path | None) -> Manifest | None:
    """The engine's manifest; None when it cannot be read here."""
    if bundle is None:
        return None
    try:
        return Manifest.model_validate(json.loads((bundle / "manifest.json").read_text()))
    except (OSError, ValueError, ValidationError):
        return None
