"""Signing keys and signed engine files: `partsight-train keygen` and `partsight-train bundle`."""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge.store import TrustedKeys
from tests.engine_files import flip_byte, make_signer, members, reversioned, trusted_folder
from trainer.cli import main
from trainer.fit import FitResult


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_writes_a_private_key_only_its_owner_can_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = tmp_path / "keys" / "line3"
    code, out, _ = run(capsys, "keygen", "--out", str(key))
    assert code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    public = key.with_name("line3.pub")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    [key_id] = TrustedKeys.load(key.parent).keys  # the .pub file is a key a station can trust
    assert out.startswith(f"key {key_id[:16]}: private {key}")
    code, _, err = run(capsys, "keygen", "--out", str(key))
    assert (code, err) == (2, f"partsight-train: error: {key} exists; not overwriting a key\n")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_private_key_others_can_read_is_refused(
    capsys: pytest.CaptureFixture[str], tiny_engine: FitResult, tmp_path: Path, mode: int
) -> None:
    signer = make_signer(tmp_path)
    os.chmod(signer.private, mode)
    code, out, err = run(
        capsys, "bundle", "--engine", str(tiny_engine.engine), "--key", str(signer.private),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (
        f"partsight-train: error: permissions {mode:04o} for {signer.private} are too open: a "
        f"private key must be readable by its owner only (chmod 600 {signer.private})\n"
    )
    assert not list(tmp_path.glob("*.tar"))


def test_a_linked_or_foreign_key_is_refused(tiny_engine: FitResult, tmp_path: Path) -> None:
    from trainer.errors import SigningError
    from trainer.package import write_engine_file

    signer = make_signer(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(signer.private)
    with pytest.raises(SigningError, match="cannot open the private key"):
        write_engine_file(tiny_engine.engine, link, tmp_path)
    other = tmp_path / "ecdsa"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    other.write_bytes(pem)
    other.chmod(0o600)
    with pytest.raises(SigningError, match="not an Ed25519 private key"):
        write_engine_file(tiny_engine.engine, other, tmp_path)


def test_bundle_writes_one_signed_file_with_exactly_the_engine(
    capsys: pytest.CaptureFixture[str], tiny_engine: FitResult, tmp_path: Path
) -> None:
    signer = make_signer(tmp_path / "keys")
    engine = reversioned(tiny_engine.engine, "1.2.0", tmp_path / "engine")
    (engine / "manifest.sig").write_text("a stale signature, never copied\n")
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, _ = run(
        capsys, "bundle", "--engine", str(engine), "--key", str(signer.private), "--out", str(out)
    )
    file = out / "tiny-1.2.0.tar"
    assert (code, stdout) == (0, f"{file}\n")
    got = members(file)
    manifest = (engine / "manifest.json").read_bytes()
    listed = [entry["path"] for entry in json.loads(manifest)["files"]]
    assert [info.name for info, _ in got] == ["manifest.json", "manifest.sig", *listed]
    assert got[0][1] == manifest  # the canonical manifest: its bytes, untouched
    assert all(info.type == tarfile.REGTYPE and info.mode == 0o644 and info.mtime == 0
               for info, _ in got)  # fmt: skip
    assert all(signer.private.read_bytes() not in data for _, data in got)
    trust = TrustedKeys.load(trusted_folder(tmp_path / "trusted", signer))
    assert trust.verify(got[0][1], got[1][1]) == signer.key_id
    with pytest.raises(Exception, match="does not match the manifest"):
        trust.verify(flip_byte(manifest), got[1][1])

    # The same engine and key give the same bytes; a file path must carry the engine's name.
    first = file.read_bytes()
    assert main(["bundle", "--engine", str(engine), "--key", str(signer.private),
                 "--out", str(file)]) == 0  # fmt: skip
    assert file.read_bytes() == first
    # Another engine under the same name and version is refused; the file there is kept.
    (engine / "manifest.json").write_bytes(manifest.replace(b'"1.2.0"', b'"1.2.0"  ', 1))
    code, _, err = run(
        capsys, "bundle", "--engine", str(engine), "--key", str(signer.private), "--out", str(out)
    )
    assert code == 2 and "holds another engine file of this name and version" in err
    assert file.read_bytes() == first and not (out / "tiny-1.2.0.tar.partial").exists()
    (engine / "manifest.json").write_bytes(manifest)
    code, _, err = run(
        capsys, "bundle", "--engine", str(engine), "--key", str(signer.private),
        "--out", str(out / "engine.tar"),
    )  # fmt: skip
    assert err == (
        f"partsight-train: error: {out / 'engine.tar'}: the engine file for this bundle is "
        "named tiny-1.2.0.tar\n"
    )


def test_a_bundle_whose_files_changed_is_not_signed(
    capsys: pytest.CaptureFixture[str], tiny_engine: FitResult, tmp_path: Path
) -> None:
    signer = make_signer(tmp_path / "keys")
    engine = reversioned(tiny_engine.engine, "1.2.0", tmp_path / "engine")
    model = engine / "model.onnx"
    model.write_bytes(flip_byte(model.read_bytes()))
    code, _, err = run(
        capsys, "bundle", "--engine", str(engine), "--key", str(signer.private),
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert err == (
        f"partsight-train: error: {engine}: model.onnx does not match its sha256 (tampered?)\n"
    )


def test_bundle_into_a_folder_not_made_yet(tiny_engine: FitResult, tmp_path: Path) -> None:
    """`bundle --out dist/` on a fresh machine: the folder is made, the file named for the
    engine; a `*.tar` path that is not the engine's name is still refused."""
    from trainer.errors import SigningError
    from trainer.package import write_engine_file

    signer = make_signer(tmp_path)
    written = write_engine_file(tiny_engine.engine, signer.private, tmp_path / "dist")
    assert written.parent == tmp_path / "dist" and written.name.endswith(".tar")
    with pytest.raises(SigningError, match="is named"):
        write_engine_file(tiny_engine.engine, signer.private, tmp_path / "other" / "x.tar")
