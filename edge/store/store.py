"""The engine store: the engines installed on this station and which one is active.

Layout, under the state directory (`<state_dir>/engines/`, edge.config's `engine_store_dir`):

    active                      the active pointer (edge.store.pointer)
    <name>/<version>/bundle/    an installed engine: the verified bundle, manifest.sig included
    <name>/<version>/installed.json   its install record: signer, time, source file, checks
    .staging/                   private staging folders of installs (and removals) in progress
    .lock                       held (flock) by whichever command changes the store

Guarantees:
- Nothing reaches `<name>/<version>/` that has not passed, in this order, the signature check
  against the station's trusted keys, every file's sha256 and size, the format version, the
  version check (newer than every installed version of that name unless a downgrade is allowed)
  and the golden samples on this station's own backend. It is unpacked, checked and recorded in
  a private staging folder (0700) and appears in the store by one rename.
- The active pointer only ever names an installed engine, and changes by an atomic, durable
  rename (edge.store.pointer). A crash at any point (edge.store.faults) leaves either the old
  state or the new one; what an interrupted command left in `.staging` is removed by the next.
- One command changes the store at a time (the lock); readers (the daemon) need no lock.
- The active engine is never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.bundle import MANIFEST, Bundle, load_bundle, sha256_file
from edge.errors import PartSightError
from edge.manifest import FORMAT_VERSION, Manifest
from edge.store.archive import unpack
from edge.store.durable import fsync_dir, fsync_tree, write_synced
from edge.store.errors import StoreError
from edge.store.faults import crash_point
from edge.store.pointer import (
    EngineRef,
    Pointer,
    first_pointer,
    is_pointer_leftover,
    read_pointer,
    write_pointer,
)
from edge.store.semver import newer, precedence
from edge.store.signature import TrustedKeys, read_signed_manifest, short_id

log = logging.getLogger(__name__)

ACTIVE = "active"
STAGING = ".staging"
LOCK = ".lock"
BUNDLE = "bundle"
RECORD = "installed.json"


@dataclass(frozen=True)
class Validation:
    """What this station checked before the engine was let in."""

    backend: str  # the inference backend the golden samples ran on
    golden_samples: int


# Loads a staged bundle folder on this station's backend and checks its golden samples;
# raises a PartSightError (BundleError, InferenceError) when it does not pass.
Validator = Callable[[Path], Validation]


class InstallRecord(BaseModel):
    """installed.json: who signed the engine, when and from what it was installed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_id: Literal["partsight.installed/1"] = Field("partsight.installed/1", alias="schema")
    name: str
    version: str
    signer: str = Field(description="key id (sha256 of the public key) that signed it")
    installed: str = Field(description="ISO 8601 UTC")
    source: str = Field(description="the engine file it was installed from")
    archive_sha256: str
    backend: str = Field(description="the backend its golden samples passed on")
    golden_samples: int


@dataclass(frozen=True)
class Installed:
    """One engine in the store, as listed (its files are verified by EngineStore.verify)."""

    ref: EngineRef
    path: Path  # <store>/<name>/<version>
    record: InstallRecord | None
    manifest: Manifest | None
    problem: str | None = None  # why the record or manifest cannot be read

    @property
    def bundle_dir(self) -> Path:
        return self.path / BUNDLE


@dataclass(frozen=True)
class Verified:
    """An installed engine whose signature and file hashes have just been checked."""

    ref: EngineRef
    bundle: Bundle
    signer: str


class EngineStore:
    """The store at `root` (a station's is `config.engine_store_dir`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pointer_path = root / ACTIVE
        self.staging_root = root / STAGING
        self.lock_path = root / LOCK

    # -- reading ----------------------------------------------------------------------------

    def installed(self) -> list[Installed]:
        """Every installed engine, by name and then version precedence."""
        found: list[Installed] = []
        if not self.root.is_dir():
            return found
        for name_dir in sorted(self.root.iterdir()):
            if name_dir.name.startswith(".") or not name_dir.is_dir():
                continue
            for version_dir in name_dir.iterdir():
                if version_dir.name.startswith(".") or not version_dir.is_dir():
                    continue
                try:
                    ref = EngineRef(name_dir.name, version_dir.name)
                except StoreError:
                    log.warning("%s: not an engine folder; ignored", version_dir)
                    continue
                found.append(_describe(ref, version_dir))
        return sorted(found, key=lambda i: (i.ref.name, precedence(i.ref.version)))

    def find(self, ref: EngineRef) -> Installed:
        path = self.root / ref.name / ref.version
        if not (path / BUNDLE).is_dir():
            raise StoreError(f"{ref} is not installed")
        return _describe(ref, path)

    def pointer(self) -> Pointer | None:
        return read_pointer(self.pointer_path)

    def active(self) -> EngineRef | None:
        pointer = self.pointer()
        return None if pointer is None else pointer.active

    def verify(self, ref: EngineRef, trust: TrustedKeys) -> Verified:
        """Check an installed engine again before it is used: its signature against the trusted
        keys and every file's sha256 (anything may have changed on disk since it was
        installed). StoreError, SignatureError or BundleError say what is wrong."""
        found = self.find(ref)
        signer, signed = read_signed_manifest(found.bundle_dir, trust)
        bundle = load_bundle(found.bundle_dir, signed)
        manifest = bundle.manifest
        if (manifest.name, manifest.version) != (ref.name, ref.version):
            raise StoreError(f"{found.path} holds {manifest.name}@{manifest.version}, not {ref}")
        log.info("%s: the signature by key %s and every file check out", ref, short_id(signer))
        return Verified(ref, bundle, signer)

    # -- changing ---------------------------------------------------------------------------

    def install(
        self,
        archive: Path,
        trust: TrustedKeys,
        validate: Validator,
        *,
        allow_downgrade: bool = False,
        activate: bool = False,
        wait_s: float = 0.0,
    ) -> Installed:
        """Install the signed engine file `archive` (see the module docstring for the checks
        and their order); with `activate`, make it the active engine too. StoreError (or a
        SignatureError, ArchiveError, BundleError) says why it was refused; the store is then
        as it was."""
        with self._changing(wait_s):
            staging = Path(tempfile.mkdtemp(prefix="install-", dir=self.staging_root))
            try:
                ref = self._install(archive, staging, trust, validate, allow_downgrade)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
            if activate:
                self._switch(ref)
            return self.find(ref)

    def activate(self, ref: EngineRef, trust: TrustedKeys, wait_s: float = 0.0) -> Pointer:
        """Make the installed engine `ref` active, after verifying it again."""
        with self._changing(wait_s):
            self.verify(ref, trust)
            return self._switch(ref)

    def rollback(self, trust: TrustedKeys, wait_s: float = 0.0) -> Pointer:
        """Step back one activation: make the engine active before the current one (the most
        recent still installed) active; repeated, it walks further back through the history."""
        with self._changing(wait_s):
            current = self.pointer()
            if current is None:
                raise StoreError("no engine is active: nothing to roll back from")
            target = current.back({i.ref for i in self.installed()})
            if target is None:
                raise StoreError(
                    f"{current.active} is active and no earlier activation is left to go back "
                    "to (rollback steps back through the activations; `activate NAME@VERSION` "
                    "picks any installed engine)"
                )
            self.verify(target.active, trust)
            write_pointer(self.pointer_path, target)
            return target

    def remove(self, ref: EngineRef, wait_s: float = 0.0) -> None:
        """Delete an installed engine; never the active one."""
        with self._changing(wait_s):
            found = self.find(ref)
            if self.active() == ref:
                raise StoreError(f"{ref} is the active engine; activate another one first")
            trash = self.staging_root / f"remove-{ref.name}-{ref.version}-{os.getpid()}"
            os.rename(found.path, trash)  # out of the store in one step
            crash_point("removing")
            fsync_dir(found.path.parent)
            shutil.rmtree(trash)
            with contextlib.suppress(OSError):  # the name's last version: drop the folder too
                found.path.parent.rmdir()
            fsync_dir(self.root)
            log.info("removed %s", ref)

    # -- the steps ----------------------------------------------------------------------------

    def _install(
        self,
        archive: Path,
        staging: Path,
        trust: TrustedKeys,
        validate: Validator,
        allow_downgrade: bool,
    ) -> EngineRef:
        log.info("installing %s (staging in %s)", archive, staging)
        bundle_dir = staging / BUNDLE
        bundle_dir.mkdir()
        unpacked = unpack(archive, bundle_dir, trust)  # 1. signature, 2. every file
        crash_point("unpacked")
        manifest = _manifest(bundle_dir, unpacked.manifest_bytes)  # 3. format version
        ref = EngineRef(manifest.name, manifest.version)
        self._check_version(ref, allow_downgrade)  # 4. newer than the installed ones
        log.info("%s: signed by %s; checking it on this station", ref, short_id(unpacked.signer))
        try:
            validation = validate(bundle_dir)  # 5. this station's backend, golden samples
        except PartSightError as exc:
            why = str(exc).replace(f"{bundle_dir}: ", "")  # the staging folder says nothing
            raise StoreError(f"{ref} does not pass on this station: {why}") from None
        crash_point("validated")
        record = InstallRecord(
            name=ref.name,
            version=ref.version,
            signer=unpacked.signer,
            installed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            source=archive.name,
            archive_sha256=sha256_file(archive),
            backend=validation.backend,
            golden_samples=validation.golden_samples,
        )
        record_bytes = (json.dumps(record.model_dump(by_alias=True), indent=2) + "\n").encode()
        write_synced(staging / RECORD, record_bytes)
        fsync_tree(staging)
        crash_point("staged")
        name_dir = self.root / ref.name
        name_dir.mkdir(exist_ok=True)
        fsync_dir(self.root)
        crash_point("moving")
        target = name_dir / ref.version
        if target.exists():  # checked above; under the lock nothing can have put it there
            raise StoreError(f"{ref} is already installed")
        os.rename(staging, target)
        crash_point("moved")
        fsync_dir(name_dir)
        fsync_dir(self.staging_root)
        log.info("installed %s in %s", ref, target)
        return ref

    def _check_version(self, ref: EngineRef, allow_downgrade: bool) -> None:
        same = [i.ref for i in self.installed() if i.ref.name == ref.name]
        if ref in same:
            raise StoreError(
                f"{ref} is already installed (a retrained engine needs a new version: "
                "partsight-train fit --version)"
            )
        if not same:
            return
        newest = max(same, key=lambda r: precedence(r.version))
        if newer(ref.version, newest.version):
            return
        if not allow_downgrade:
            raise StoreError(
                f"{ref} is not newer than the installed {newest}; refusing a downgrade "
                "(--allow-downgrade installs it anyway)"
            )
        log.warning("installing %s although %s is installed (downgrade allowed)", ref, newest)

    def _switch(self, ref: EngineRef) -> Pointer:
        current = self.pointer()
        if current is not None and current.active == ref:
            log.info("%s is already the active engine", ref)
            return current
        pointer = first_pointer(ref) if current is None else current.to(ref)
        write_pointer(self.pointer_path, pointer)
        return pointer

    @contextlib.contextmanager
    def _changing(self, wait_s: float) -> Iterator[None]:
        """Hold the store's lock, with the store created and what crashed commands left
        behind cleaned up."""
        self._create()
        with self._locked(wait_s):
            self._recover()
            try:
                yield
            except OSError as exc:  # a full disk, a permission: the steps above undo their part
                where = f"{exc.filename}: " if exc.filename else ""
                raise StoreError(f"{where}{exc.strerror or exc}") from None

    def _create(self) -> None:
        for folder in (self.root, self.staging_root):
            try:
                folder.mkdir(mode=0o750, parents=True, exist_ok=True)
            except OSError as exc:
                why = exc.strerror or exc
                raise StoreError(f"{folder}: cannot create the engine store: {why}") from None
        owner = self.root.stat().st_uid
        if owner != os.geteuid():
            raise StoreError(
                f"{self.root} belongs to {_user(owner)}: run engine commands as that user "
                f"(sudo -u {_user(owner)} partsight engine ...), so the daemon can read them"
            )

    @contextlib.contextmanager
    def _locked(self, wait_s: float) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreError(
                            "the engine store is busy: another engine command is running"
                        ) from None
                    time.sleep(0.05)
            yield  # the lock goes with the descriptor, also when the process is killed
        finally:
            os.close(fd)

    def _recover(self) -> None:
        """Remove what an interrupted command left: staging folders (its owner held the lock,
        which is ours now, so it is gone), temporary pointers, empty name folders."""
        for leftover in sorted(self.staging_root.iterdir()):
            log.warning("removing %s, left by an interrupted engine command", leftover)
            shutil.rmtree(leftover, ignore_errors=True)
        for entry in sorted(self.root.iterdir()):
            if is_pointer_leftover(entry, ACTIVE):
                log.warning("removing %s, left by an interrupted engine command", entry)
                entry.unlink(missing_ok=True)
            elif not entry.name.startswith(".") and entry.is_dir() and not any(entry.iterdir()):
                entry.rmdir()


def _manifest(bundle_dir: Path, manifest_bytes: bytes) -> Manifest:
    """Step 3: the format version, then the whole manifest (edge.bundle's rules)."""
    raw = json.loads(manifest_bytes)  # valid JSON: unpack read its file list
    found = raw.get("format_version")
    if found != FORMAT_VERSION:
        raise StoreError(
            f"engine format version {found!r} is not supported (this PartSight reads "
            f"{FORMAT_VERSION})"
        )
    return load_bundle(bundle_dir).manifest


def _describe(ref: EngineRef, path: Path) -> Installed:
    try:
        record = InstallRecord.model_validate_json((path / RECORD).read_bytes())
        manifest = Manifest.model_validate_json((path / BUNDLE / MANIFEST).read_bytes())
    except (OSError, ValidationError) as exc:
        problem = f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        return Installed(ref, path, None, None, problem)
    return Installed(ref, path, record, manifest)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
