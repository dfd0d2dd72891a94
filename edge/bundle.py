"""Engine bundles on disk: a folder with manifest.json and the files it lists, each hashed.

Loading verifies every hash and refuses files the manifest does not list, so nothing but what was
trained (and, once signing lands, signed) ever runs. Signing adds manifest.sig next to the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.errors import BundleError
from edge.manifest import FEATURE_VERSION, FileEntry, Manifest

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Manifest

    def path(self, relative: str) -> Path:
        return self.root / relative


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: Path, manifest: Manifest, payload: list[str]) -> Manifest:
    """Hash the payload files (relative to root) into the manifest and write manifest.json."""
    entries = []
    for relative in sorted(payload):
        file = _inside(root, relative)
        entries.append(FileEntry(path=relative, sha256=sha256_file(file), size=file.stat().st_size))
    final = manifest.model_copy(update={"files": tuple(entries)})
    (root / MANIFEST).write_text(json.dumps(final.model_dump(mode="json"), indent=2) + "\n")
    return final


def load_bundle(
    root: Path | str, manifest_bytes: bytes | None = None, *, without_classifier: bool = False
) -> Bundle:
    """Read and verify a bundle folder; BundleError says exactly what is wrong.

    `manifest_bytes`: the manifest as already read (the exact bytes whose signature was just
    checked), so that what is verified and what is used are one reading of the file;
    default: read `root`/manifest.json. `without_classifier`: the engine without its heatmap
    classifier, whatever version made it (for `partsight-train classify`, which replaces it);
    otherwise a classifier of another feature layout is refused, naming the remedy."""
    root = Path(root)
    if not root.is_dir():
        raise BundleError(f"{root}: engine bundle folder not found")
    manifest_path = root / MANIFEST
    try:
        text = manifest_path.read_bytes() if manifest_bytes is None else manifest_bytes
        raw = json.loads(text)
    except FileNotFoundError as exc:
        raise BundleError(f"{manifest_path}: missing") from exc
    except (OSError, ValueError) as exc:
        raise BundleError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if without_classifier:
        raw = _without_classifier(raw)
    else:
        _check_feature_layout(manifest_path, raw)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"{manifest_path}: {where}: {first['msg']}") from exc
    _verify_files(root, manifest)
    return Bundle(root=root, manifest=manifest)


def _check_feature_layout(manifest_path: Path, raw: Any) -> None:
    """BundleError when the manifest's classifier was trained on another feature layout than
    this runtime computes (checked before validation: an older classifier entry has another
    shape too, and a schema error would not say what to do)."""
    spec = raw.get("classifier") if isinstance(raw, dict) else None
    if not isinstance(spec, dict) or spec.get("feature_version") == FEATURE_VERSION:
        return
    raise BundleError(
        f"{manifest_path}: its heatmap classifier uses feature layout "
        f"{spec.get('feature_version')}, this runtime computes layout {FEATURE_VERSION}: re-run "
        "`partsight-train classify --engine` on it"
    )


def _without_classifier(raw: Any) -> Any:
    """The raw manifest without its classifier entry and the golden samples that expect one
    (an expected P(nuisance)); their files stay listed and verified."""
    if not isinstance(raw, dict) or "classifier" not in raw:
        return raw
    golden = raw.get("golden", [])
    if isinstance(golden, list):
        golden = [
            g for g in golden
            if not (isinstance(g, dict) and g.get("expected_nuisance_probability") is not None)
        ]  # fmt: skip
    return {**{k: v for k, v in raw.items() if k != "classifier"}, "golden": golden}


def _verify_files(root: Path, manifest: Manifest) -> None:
    listed = {entry.path for entry in manifest.files}
    for entry in manifest.files:
        file = _inside(root, entry.path)
        if not file.is_file():
            raise BundleError(f"{root}: listed file {entry.path} is missing")
        if sha256_file(file) != entry.sha256:
            raise BundleError(f"{root}: {entry.path} does not match its sha256 (tampered?)")
    needed = {manifest.model.file, *(g.file for g in manifest.golden)}
    if manifest.scoring.mask_file:
        needed.add(manifest.scoring.mask_file)
    if manifest.classifier:
        needed |= set(manifest.classifier.files)
    if manifest.registration:
        folder = manifest.registration.directory.rstrip("/") + "/"
        _inside(root, manifest.registration.directory)
        outside = [f for f in manifest.registration.files if not f.startswith(folder)]
        if outside:
            raise BundleError(f"{root}: registration files outside {folder}: {outside}")
        needed |= set(manifest.registration.files)
    if needed - listed:
        raise BundleError(f"{root}: files used but not hashed: {sorted(needed - listed)}")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    extra = present - listed - {MANIFEST, SIGNATURE}
    if extra:
        raise BundleError(f"{root}: files not listed in the manifest: {sorted(extra)}")


def _inside(root: Path, relative: str) -> Path:
    """Resolve a manifest path, refusing anything that escapes the bundle."""
    file = (root / relative).resolve()
    if not file.is_relative_to(root.resolve()):
        raise BundleError(f"{root}: manifest path {relative!r} escapes the bundle")
    return file
