"""The signed engine file: one uncompressed tar of a bundle, and the safe reader for it.

Layout (written by `partsight-train bundle`, trainer/package.py):

    manifest.json       first: the canonical manifest, exactly the bytes that are signed
    manifest.sig        second: the signature over them (edge.store.signature)
    <files>             then every file the manifest lists, as regular files, nothing else

The file is named `<name>-<version>.tar`. Uncompressed on purpose: what is read is what was
signed and hashed, and the size of every member is known from its header before a byte of it is
read, so a decompression bomb cannot exist.

`unpack` never lets tarfile extract anything: it reads the two small leading members into
memory, verifies the signature (before anything else of the archive is trusted), then streams
each further member into a file it creates itself (exclusively, never following a link) inside
the caller's private staging folder. A member is refused unless it is a plain regular file (no
symbolic or hard link, device, FIFO, directory or sparse file), its name is a safe relative path
(no absolute path, no `..`, no empty or `.` component, no backslash or NUL), the signed manifest
lists it exactly once, and its size in the header equals the manifest's; its bytes must then hash
to the manifest's sha256. The manifest's sizes are bounded (MAX_BUNDLE_BYTES in all), so a
header claiming 10 GB (a sparse member, a tar bomb) is refused before any of it is read. This is
stricter than tarfile's `data_filter` (which allows links within the destination and differs
between Python 3.10 patch releases), so it does not depend on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from edge.bundle import MANIFEST, SIGNATURE
from edge.manifest import FileEntry
from edge.store.durable import create_exclusive, write_all, write_synced
from edge.store.errors import ArchiveError, StoreError
from edge.store.signature import MAX_SIGNATURE_BYTES, TrustedKeys

log = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".tar"
MAX_MANIFEST_BYTES = 4 << 20
MAX_BUNDLE_BYTES = 4 << 30  # every listed file together
MAX_FILES = 4096
MAX_PATH_CHARS = 1024
_CHUNK = 1 << 20

_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.DIRTYPE: "a directory",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


def archive_name(name: str, version: str) -> str:
    """The engine file's name: `<name>-<version>.tar`."""
    return f"{name}-{version}{ARCHIVE_SUFFIX}"


def unsafe_path(path: str) -> str | None:
    """Why `path` may not name a file inside a bundle, or None when it may."""
    if not path:
        return "an empty name"
    if "\x00" in path:
        return "a NUL character"
    if path.startswith("/"):
        return "an absolute path"
    if "\\" in path:
        return "a backslash"
    if len(path) > MAX_PATH_CHARS:
        return f"longer than {MAX_PATH_CHARS} characters"
    parts = path.split("/")
    if ".." in parts:
        return "a '..' component"
    if "" in parts or "." in parts:
        return "an empty or '.' component"
    return None


@dataclass(frozen=True)
class Unpacked:
    """What `unpack` verified."""

    manifest_bytes: bytes  # the canonical manifest, as signed
    signer: str  # the key id that signed it
    files: int  # payload files written
    size: int  # their bytes


def unpack(archive: Path, dest: Path, trust: TrustedKeys) -> Unpacked:
    """Verify `archive` and write its bundle into the empty folder `dest` (private staging).

    In this order: the signature over the manifest (SignatureError); then every member, each
    file's type, name, size and sha256 against the signed manifest, and that none is missing
    (ArchiveError). A file that cannot be written (a full disk) is a StoreError naming it. On
    any error `dest` may hold a partial bundle: the caller discards it.
    """
    if not archive.is_file():
        raise StoreError(f"{archive}: no such engine file")
    with _open(archive) as tar:
        try:
            manifest_bytes = _leading(tar, MANIFEST, MAX_MANIFEST_BYTES)
            signature = _leading(tar, SIGNATURE, MAX_SIGNATURE_BYTES)
        except tarfile.TarError as exc:
            raise ArchiveError(f"unreadable archive ({exc})") from None
        if manifest_bytes is None:
            raise ArchiveError("not an engine archive: manifest.json is not its first member")
        if signature is None:
            raise ArchiveError("not signed: no manifest.sig after manifest.json")
        signer = trust.verify(manifest_bytes, signature)
        log.info("signature by key %s checks out", signer[:16])
        expected = _listed(manifest_bytes)
        write_synced(dest / MANIFEST, manifest_bytes)
        write_synced(dest / SIGNATURE, signature)
        files, size = _payload(tar, dest, expected)
    log.info("%d files (%d bytes) match the manifest's sha256 and size", files, size)
    return Unpacked(manifest_bytes, signer, files, size)


def _open(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode="r:")  # uncompressed only: see the module docstring
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"not an engine archive (an uncompressed tar): {exc}") from None


def _leading(tar: tarfile.TarFile, name: str, limit: int) -> bytes | None:
    """The next member's bytes if it is `name` (a small regular file); None when the next
    member is something else."""
    member = tar.next()
    if member is None or member.name != name:
        return None
    _check_kind(member)
    if member.size > limit:
        raise ArchiveError(f"{name}: {member.size} bytes, more than the {limit} allowed")
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file
    try:
        data = handle.read(member.size)
    except tarfile.ReadError:  # "unexpected end of data"
        data = b""
    if len(data) != member.size:
        raise ArchiveError(f"{name}: the archive ends inside this file (truncated)")
    return data


def _listed(manifest_bytes: bytes) -> dict[str, FileEntry]:
    """The manifest's file list (path -> entry), checked for safe, unique paths and bounded
    sizes. Only `files` is read here; the rest of the manifest is validated after unpacking."""
    try:
        raw = json.loads(manifest_bytes)
    except ValueError as exc:
        raise ArchiveError(f"manifest.json is not valid JSON ({exc})") from None
    items = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ArchiveError("manifest.json has no list of files")
    if len(items) > MAX_FILES:
        raise ArchiveError(f"manifest.json lists {len(items)} files, more than {MAX_FILES}")
    listed: dict[str, FileEntry] = {}
    for item in items:
        try:
            entry = FileEntry.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"]
            raise ArchiveError(f"manifest.json: a malformed file entry ({first})") from None
        why = unsafe_path(entry.path)
        if why is None and entry.path in (MANIFEST, SIGNATURE):
            why = "the name of the manifest or its signature"
        if why is not None:
            raise ArchiveError(f"manifest.json lists {entry.path!r}: {why}")
        if entry.path in listed:
            raise ArchiveError(f"manifest.json lists {entry.path} twice")
        listed[entry.path] = entry
    total = sum(e.size for e in listed.values())
    if total > MAX_BUNDLE_BYTES:
        raise ArchiveError(f"the manifest's files add up to {total} bytes, over {MAX_BUNDLE_BYTES}")
    return listed


def _payload(tar: tarfile.TarFile, dest: Path, expected: dict[str, FileEntry]) -> tuple[int, int]:
    seen: set[str] = {MANIFEST, SIGNATURE}
    size = 0
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise ArchiveError(f"unreadable archive ({exc})") from None
        if member is None:
            break
        name = member.name
        _check_kind(member)
        why = unsafe_path(name)
        if why is not None:
            raise ArchiveError(f"member {name!r} is refused: {why}")
        if name in seen:
            raise ArchiveError(f"{name} appears twice in the archive")
        entry = expected.get(name)
        if entry is None:
            raise ArchiveError(f"{name} is not listed in the manifest")
        if member.size != entry.size:
            raise ArchiveError(
                f"{name}: {member.size} bytes in the archive, the manifest says {entry.size}"
            )
        seen.add(name)
        _copy(tar, member, dest, entry)
        size += entry.size
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveError(f"missing from the archive (truncated?): {', '.join(missing)}")
    return len(expected), size


def _check_kind(member: tarfile.TarInfo) -> None:
    if member.type not in _REGULAR or member.sparse is not None:
        kind = "a sparse file" if member.sparse is not None else _KINDS.get(member.type)
        raise ArchiveError(
            f"member {member.name!r} is {kind or f'of tar type {member.type!r}'}; "
            "an engine archive holds regular files only"
        )


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, entry: FileEntry) -> None:
    """Stream one member into dest/<path>, hashing it; the bytes must match the manifest."""
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    target = dest / entry.path
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = create_exclusive(target)
        try:
            left = _stream(source, fd, digest, entry)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"cannot unpack {entry.path}: {exc.strerror or exc}") from None
    if left:
        raise ArchiveError(f"{entry.path}: the archive ends inside this file (truncated)")
    if digest.hexdigest() != entry.sha256:
        raise ArchiveError(f"{entry.path} does not match its sha256 in the manifest (tampered?)")


def _stream(source: IO[bytes], fd: int, digest: hashlib._Hash, entry: FileEntry) -> int:
    """Copy at most entry.size bytes; how many were missing (0 when complete)."""
    left = entry.size
    while left:
        try:
            chunk = source.read(min(_CHUNK, left))
        except tarfile.ReadError:  # "unexpected end of data"
            return left
        if not chunk:
            return left
        digest.update(chunk)
        write_all(fd, chunk)
        left -= len(chunk)
    return 0
