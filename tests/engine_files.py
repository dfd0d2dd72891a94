"""Signed engines for tests: signing keys, other versions of the tiny engine, engine files
(`partsight-train bundle`'s tar) and hand-made variants of them, and a station configuration
that runs the engine store.

    signer = make_signer(tmp_path / "keys")
    v2 = engine_file(tiny_engine.engine, signer, tmp_path / "out", version="0.2.0")
    bad = rewrite_archive(v2, tmp_path / "bad.tar", drop={"manifest.sig"})
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from edge.store.signature import encode_signature, key_id, signed_message
from trainer.package import keygen, write_engine_file
from trainer.station_files import station_config, write_config


@dataclass(frozen=True)
class Signer:
    private: Path
    public: Path
    key_id: str


def make_signer(folder: Path, name: str = "signer") -> Signer:
    """A new key pair in `folder` (partsight-train keygen)."""
    signer = keygen(folder / name)
    return Signer(folder / name, folder / f"{name}.pub", signer)


def trusted_folder(folder: Path, *signers: Signer) -> Path:
    """A trusted keys folder holding the signers' public keys."""
    folder.mkdir(parents=True, exist_ok=True)
    for signer in signers:
        shutil.copy(signer.public, folder / signer.public.name)
    return folder


def edit_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the bundle folder's manifest.json with `change` applied (manifest.json is not
    among the hashed files; sign again afterwards)."""
    path = folder / "manifest.json"
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw, indent=2) + "\n")


def reversioned(engine: Path, version: str, dest: Path) -> Path:
    """A copy of the engine folder with `version` in its manifest: a second engine version
    without training twice."""
    shutil.copytree(engine, dest)
    (dest / "manifest.sig").unlink(missing_ok=True)
    edit_manifest(dest, lambda raw: raw.update(version=version))
    return dest


def signature(manifest: bytes, signer: Signer) -> bytes:
    """manifest.sig's bytes for these manifest bytes, as `partsight-train bundle` signs."""
    key = load_pem_private_key(signer.private.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return encode_signature(key_id(key.public_key()), key.sign(signed_message(manifest)))


def sign_folder(folder: Path, signer: Signer) -> None:
    """Write manifest.sig into a bundle folder."""
    (folder / "manifest.sig").write_bytes(
        signature((folder / "manifest.json").read_bytes(), signer)
    )


def engine_file(engine: Path, signer: Signer, out: Path, version: str | None = None) -> Path:
    """The signed engine file of `engine` (in another version if given), written into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if version is not None:
        engine = reversioned(engine, version, out / f"folder-{version}")
    return write_engine_file(engine, signer.private, out)


def members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every member of an engine file with its bytes, in order."""
    with tarfile.open(archive) as tar:
        out = []
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            out.append((info, handle.read() if handle else b""))
        return out


def rewrite_archive(
    archive: Path,
    out: Path,
    *,
    drop: Collection[str] = (),
    replace: Mapping[str, bytes] | None = None,
    add: list[tuple[tarfile.TarInfo, bytes]] | None = None,
) -> Path:
    """A hand-made variant of an engine file: members dropped, their bytes replaced, others
    appended (a TarInfo may be a link, a device, any name)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members(archive):
            if info.name in drop:
                continue
            data = (replace or {}).get(info.name, data)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info, data in add or []:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out


def flip_byte(data: bytes, at: int | None = None) -> bytes:
    """`data` with one byte changed (by default the middle one)."""
    index = len(data) // 2 if at is None else at
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def store_station(
    folder: Path,
    trusted: Path,
    *,
    camera: Mapping[str, Any] | None = None,
    mqtt: Mapping[str, Any] | None = None,
    pipeline: Mapping[str, Any] | None = None,
) -> Path:
    """A station configuration file running the engine store under `folder`/state."""
    data = station_config(
        state_dir=folder / "state",
        engine=folder,  # replaced below
        camera=camera or {"kind": "replay", "folder": str(folder)},
        mqtt=mqtt,
        pipeline=pipeline,
    )
    data["engine"] = {"store": True, "trusted_keys": str(trusted)}
    return write_config(folder / "partsight.toml", data)
