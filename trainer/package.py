"""Signing keys and signed engine files: `partsight-train keygen` and `partsight-train bundle`.

keygen writes an Ed25519 key pair: the private key as PEM (PKCS#8, unencrypted) in a new file
with mode 0600, the public key as PEM next to it (`KEY.pub`), to be copied into each station's
trusted keys folder. A private key is only ever read from a regular file that no one but its
owner can read (mode 0600 or stricter), as ssh insists for its keys, and is never put into a
bundle: the engine file holds exactly the manifest, its signature and the files the manifest
lists.

bundle signs an engine folder (see edge.store.signature for what exactly is signed) and writes
the engine file edge.store.archive describes: `<name>-<version>.tar`. Its tar headers carry no
owner, times or permissions from the build machine (mode 0644, mtime 0, uid/gid 0), so the same
engine and key always give the same file.
"""

from __future__ import annotations

import filecmp
import io
import logging
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.bundle import MANIFEST, SIGNATURE, load_bundle
from edge.store import archive_name, key_id, short_id
from edge.store.durable import write_synced
from edge.store.signature import PUBLIC_KEY_SUFFIX, encode_signature, signed_message
from trainer.errors import SigningError

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 16 << 10


def keygen(path: Path) -> str:
    """Write a new key pair: `path` (private, 0600) and `path.pub`; return the key id.
    Never overwrites a file (SigningError)."""
    public_path = path.with_name(path.name + PUBLIC_KEY_SUFFIX)
    for existing in (path, public_path):
        if existing.exists() or existing.is_symlink():
            raise SigningError(f"{existing} exists; not overwriting a key")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_synced(path, private_pem, mode=0o600)
    os.chmod(path, 0o600)  # whatever the umask left
    write_synced(public_path, public_pem, mode=0o644)
    signer = key_id(private.public_key())
    log.info("new signing key %s: %s (private), %s (public)", short_id(signer), path, public_path)
    return signer


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path`, refused (SigningError) unless `path` is a regular
    file readable by its owner only."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise SigningError(f"{path}: cannot open the private key: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SigningError(f"{path}: a private key must be a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise SigningError(
                f"permissions {mode:04o} for {path} are too open: a private key must be "
                f"readable by its owner only (chmod 600 {path})"
            )
        data = handle.read(MAX_KEY_BYTES + 1)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{path}: not an Ed25519 private key ({type(key).__name__})")
    return key


def write_engine_file(engine: Path, key_path: Path, out: Path) -> Path:
    """Sign the engine folder `engine` with the key in `key_path` and write its engine file.

    `out` is a folder (the file is written into it; made when missing and not named `*.tar`) or
    the file itself, which must then be named `<name>-<version>.tar`. The folder must load as a
    bundle (every hash checked) first. An existing file of that name is left as it is when it
    holds these very bytes, and refused otherwise: two different engine files of one name and
    version would be two engines the store cannot tell apart. Returns the file. SigningError or
    BundleError when it cannot be.
    """
    bundle = load_bundle(engine)
    manifest = bundle.manifest
    key = load_private_key(key_path)
    name = archive_name(manifest.name, manifest.version)
    if not out.exists() and not out.name.endswith(".tar"):  # a folder not made yet (`dist/`)
        out.mkdir(parents=True)
    target = out / name if out.is_dir() else out
    if target.name != name:
        raise SigningError(f"{out}: the engine file for this bundle is named {name}")
    listed = [bundle.path(entry.path) for entry in manifest.files]
    if any(p.exists() and os.path.samefile(p, key_path) for p in listed):
        raise SigningError(f"{key_path}: the private key is one of the engine's files")
    manifest_bytes = (engine / MANIFEST).read_bytes()
    signer = key_id(key.public_key())
    signature = encode_signature(signer, key.sign(signed_message(manifest_bytes)))
    partial = target.with_name(target.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, len(manifest_bytes), io.BytesIO(manifest_bytes))
            _add(tar, SIGNATURE, len(signature), io.BytesIO(signature))
            for entry, path in zip(manifest.files, listed, strict=True):
                with path.open("rb") as handle:
                    _add(tar, entry.path, entry.size, handle)
        if target.exists() and not filecmp.cmp(partial, target, shallow=False):
            partial.unlink()
            raise SigningError(
                f"{target} exists and holds another engine file of this name and version: give "
                "a retrained engine a new version (fit --version), or remove the old file"
            )
        partial.replace(target)
    except OSError as exc:  # a full disk, a read-only folder
        partial.unlink(missing_ok=True)
        raise SigningError(f"{target}: cannot write: {exc.strerror or exc}") from None
    log.info("%s signed by key %s: %s", name, short_id(signer), target)
    return target


def _add(tar: tarfile.TarFile, name: str, size: int, data: BinaryIO) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, data)
