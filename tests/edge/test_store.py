"""The engine store through `partsight engine ...`, in-process: real signed engine files of the
tiny engine, real ONNX Runtime for the golden samples.

Every refused install must say why in one line, exit 2, and leave the store exactly as it was:
the same engines installed, the same one active, nothing left in staging.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.store import EngineRef, EngineStore, StoreError
from edge.store import archive as archive_module
from edge.store.semver import newer, precedence
from tests.engine_files import (
    Signer,
    edit_manifest,
    engine_file,
    flip_byte,
    make_signer,
    members,
    reversioned,
    rewrite_archive,
    signature,
    store_station,
    trusted_folder,
)
from trainer.fit import FitResult
from trainer.package import write_engine_file

V1, V2 = EngineRef("tiny", "0.1.0"), EngineRef("tiny", "0.2.0")
TEN_GB = 10 << 30


@dataclass(frozen=True)
class Files:
    signer: Signer
    stranger: Signer  # a key the station does not trust
    trusted: Path
    v0: Path  # tiny-0.0.9.tar
    v1: Path
    v2: Path
    v3: Path
    engine: Path  # the tiny engine folder
    work: Path


@pytest.fixture(scope="module")
def files(tiny_engine: FitResult, tmp_path_factory: pytest.TempPathFactory) -> Files:
    work = tmp_path_factory.mktemp("signed")
    signer = make_signer(work / "keys")
    stranger = make_signer(work / "keys", "stranger")
    out = work / "files"
    return Files(
        signer=signer,
        stranger=stranger,
        trusted=trusted_folder(work / "trusted", signer),
        v0=engine_file(tiny_engine.engine, signer, out, "0.0.9"),
        v1=engine_file(tiny_engine.engine, signer, out, "0.1.0"),
        v2=engine_file(tiny_engine.engine, signer, out, "0.2.0"),
        v3=engine_file(tiny_engine.engine, signer, out, "0.3.0"),
        engine=tiny_engine.engine,
        work=work,
    )


@pytest.fixture(scope="module")
def template(files: Files) -> Path:
    """A station folder whose store holds tiny@0.1.0, active (installed once, copied per test)."""
    folder = files.work / "template"
    folder.mkdir()
    config = store_station(folder, files.trusted)
    assert main(["engine", "install", "--config", str(config), str(files.v1), "--activate"]) == 0
    return folder


@dataclass(frozen=True)
class Station:
    config: Path
    store: EngineStore


@pytest.fixture
def station(template: Path, files: Files, tmp_path: Path) -> Station:
    shutil.copytree(template / "state", tmp_path / "state")
    config = store_station(tmp_path, files.trusted)
    return Station(config, EngineStore(load_config(config).engine_store_dir))


def engine(
    capsys: pytest.CaptureFixture[str], station: Station, *args: str
) -> tuple[int, str, str]:
    """`partsight engine ARGS --config ...`: exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(["engine", *args, "--config", str(station.config)])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], station: Station, file: Path) -> str:
    """Install `file`; assert it is refused with one line and the store unchanged; the line."""
    code, out, err = engine(capsys, station, "install", str(file), "--activate")
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert_unchanged(station.store)
    return lines[0].removeprefix("partsight: error: ")


def assert_unchanged(store: EngineStore) -> None:
    assert [i.ref for i in store.installed()] == [V1]
    assert store.active() == V1
    assert list(store.staging_root.iterdir()) == []
    assert sorted(p.name for p in store.root.iterdir()) == [".lock", ".staging", "active", "tiny"]


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.devmajor, info.devminor = 1, 3  # /dev/null's numbers, for a device
    return info, b""


def member_bytes(archive: Path, name: str) -> bytes:
    return dict((info.name, data) for info, data in members(archive))[name]


# -- install refusals ----------------------------------------------------------------------------


def test_an_unsigned_bundle_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    unsigned = rewrite_archive(files.v2, tmp_path / "tiny-0.2.0.tar", drop={"manifest.sig"})
    assert refused(capsys, station, unsigned) == "not signed: no manifest.sig after manifest.json"


def test_a_signature_by_an_untrusted_key_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    folder = reversioned(files.engine, "0.2.0", tmp_path / "folder")
    foreign = write_engine_file(folder, files.stranger.private, tmp_path)
    assert refused(capsys, station, foreign) == (
        f"signed by key {files.stranger.key_id[:16]}, which is not trusted (not in {files.trusted})"
    )


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("model.onnx", "model.onnx does not match its sha256 in the manifest (tampered?)"),
        ("golden/004.png", "golden/004.png does not match its sha256 in the manifest (tampered?)"),
        ("manifest.json", "the signature by key {key} does not match the manifest (tampered?)"),
    ],
)
def test_one_changed_byte_is_refused(
    capsys: pytest.CaptureFixture[str],
    station: Station,
    files: Files,
    tmp_path: Path,
    member: str,
    message: str,
) -> None:
    data = member_bytes(files.v2, member)
    if member == "manifest.json":  # a change that keeps it valid JSON: a threshold digit
        at = data.index(b'"threshold": ') + len(b'"threshold": ') + 2
        changed = flip_byte(data, at)
        json.loads(changed)
    else:
        changed = flip_byte(data)
    bad = rewrite_archive(files.v2, tmp_path / "bad.tar", replace={member: changed})
    assert refused(capsys, station, bad) == message.format(key=files.signer.key_id[:16])


def test_an_extra_file_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    bad = rewrite_archive(files.v2, tmp_path / "bad.tar", add=[regular("run.sh", b"#!/bin/sh\n")])
    assert refused(capsys, station, bad) == "run.sh is not listed in the manifest"


def test_a_missing_file_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    bad = rewrite_archive(files.v2, tmp_path / "bad.tar", drop={"golden/011.png"})
    assert refused(capsys, station, bad) == "missing from the archive (truncated?): golden/011.png"


def test_an_older_version_is_refused_unless_a_downgrade_is_allowed(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files
) -> None:
    assert refused(capsys, station, files.v0) == (
        "tiny@0.0.9 is not newer than the installed tiny@0.1.0; refusing a downgrade "
        "(--allow-downgrade installs it anyway)"
    )
    assert refused(capsys, station, files.v1).startswith("tiny@0.1.0 is already installed")
    code, out, _ = engine(capsys, station, "install", str(files.v0), "--allow-downgrade")
    assert code == 0, out
    assert [i.ref for i in station.store.installed()] == [EngineRef("tiny", "0.0.9"), V1]
    assert station.store.active() == V1


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (regular("../x", b"x"), "member '../x' is refused: a '..' component"),
        (regular("golden/../../x", b"x"), "member 'golden/../../x' is refused: a '..' component"),
        (regular("/etc/cron.d/x", b"x"), "member '/etc/cron.d/x' is refused: an absolute path"),
        (
            special("model.onnx", tarfile.SYMTYPE, "/etc/passwd"),
            "member 'model.onnx' is a symbolic link; an engine archive holds regular files only",
        ),
        (
            special("golden/004.png", tarfile.LNKTYPE, "manifest.json"),
            "member 'golden/004.png' is a hard link; an engine archive holds regular files only",
        ),
        (
            special("null", tarfile.CHRTYPE),
            "member 'null' is a character device; an engine archive holds regular files only",
        ),
        (
            special("disk", tarfile.BLKTYPE),
            "member 'disk' is a block device; an engine archive holds regular files only",
        ),
        (
            special("pipe", tarfile.FIFOTYPE),
            "member 'pipe' is a FIFO; an engine archive holds regular files only",
        ),
    ],
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "symlink",
        "hardlink",
        "chardev",
        "blockdev",
        "fifo",
    ],
)
def test_unsafe_members_are_refused(
    capsys: pytest.CaptureFixture[str],
    station: Station,
    files: Files,
    tmp_path: Path,
    entry: tuple[tarfile.TarInfo, bytes],
    message: str,
) -> None:
    # The unsafe member comes first after the signature, so nothing else could refuse it first.
    listed = [
        (i, d) for i, d in members(files.v2) if i.name not in ("manifest.json", "manifest.sig")
    ]
    head = rewrite_archive(files.v2, tmp_path / "head.tar", drop={i.name for i, _ in listed})
    bad = rewrite_archive(head, tmp_path / "bad.tar", add=[entry, *listed])
    assert refused(capsys, station, bad) == message
    assert not (tmp_path / "x").exists() and not Path("/etc/cron.d/x").exists()


@pytest.mark.parametrize("tar_format", ["gnu", "posix"])
def test_a_10_gb_sparse_member_is_refused_without_reading_it(
    capsys: pytest.CaptureFixture[str],
    station: Station,
    files: Files,
    tmp_path: Path,
    tar_format: str,
) -> None:
    gnu_tar = shutil.which("tar")
    if gnu_tar is None:
        pytest.skip("GNU tar is not installed: it writes the sparse archive")
    folder = tmp_path / "bomb"
    folder.mkdir()
    for info, data in members(files.v2)[:2]:  # manifest.json and manifest.sig, signed
        (folder / info.name).write_bytes(data)
    with (folder / "model.onnx").open("wb") as big:
        big.truncate(TEN_GB)  # a hole: 10 GB that take no disk
    bomb = tmp_path / "bomb.tar"
    subprocess.run(
        [gnu_tar, f"--format={tar_format}", "--sparse", "-cf", str(bomb), "-C", str(folder),
         "manifest.json", "manifest.sig", "model.onnx"],
        check=True,
    )  # fmt: skip
    assert bomb.stat().st_size < 1 << 20
    assert refused(capsys, station, bomb) == (
        "member 'model.onnx' is a sparse file; an engine archive holds regular files only"
    )


def test_a_header_claiming_10_gb_is_refused_before_its_data_is_read(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    head = rewrite_archive(
        files.v2, tmp_path / "head.tar", drop={i.name for i, _ in members(files.v2)[2:]}
    )
    with tarfile.open(head) as tar:
        end = max(m.offset_data + ((m.size + 511) // 512) * 512 for m in tar.getmembers())
    header = tarfile.TarInfo("model.onnx")
    header.size = TEN_GB
    bomb = tmp_path / "bomb.tar"
    bomb.write_bytes(head.read_bytes()[:end] + header.tobuf(tarfile.PAX_FORMAT) + bytes(4096))
    size = len(member_bytes(files.v2, "model.onnx"))
    assert refused(capsys, station, bomb) == (
        f"model.onnx: {TEN_GB} bytes in the archive, the manifest says {size}"
    )


def test_a_truncated_file_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    with tarfile.open(files.v2) as tar:
        model = tar.getmember("model.onnx")
    cut = tmp_path / "tiny-0.2.0.tar"
    cut.write_bytes(files.v2.read_bytes()[: model.offset_data + model.size // 2])
    assert refused(capsys, station, cut) == (
        "model.onnx: the archive ends inside this file (truncated)"
    )
    cut.write_bytes(files.v2.read_bytes()[:700])  # inside the manifest
    assert refused(capsys, station, cut) == (
        "manifest.json: the archive ends inside this file (truncated)"
    )


def test_not_a_tar_and_a_compressed_tar_are_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    text = tmp_path / "tiny-0.2.0.tar"
    text.write_text("hello\n" * 200)
    assert refused(capsys, station, text).startswith("not an engine archive (an uncompressed tar)")
    gz = tmp_path / "tiny-0.2.0.tar.gz"
    with tarfile.open(gz, "w:gz") as tar:
        for info, data in members(files.v2):
            tar.addfile(info, io.BytesIO(data))
    assert refused(capsys, station, gz).startswith("not an engine archive (an uncompressed tar)")


def test_another_format_version_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    raw = json.loads(member_bytes(files.v2, "manifest.json"))
    raw["format_version"] = 2  # a bundle from a newer trainer, properly signed
    manifest = (json.dumps(raw, indent=2) + "\n").encode()
    newer_format = rewrite_archive(
        files.v2,
        tmp_path / "tiny-0.2.0.tar",
        replace={"manifest.json": manifest, "manifest.sig": signature(manifest, files.signer)},
    )
    assert refused(capsys, station, newer_format) == (
        "engine format version 2 is not supported (this PartSight reads 1)"
    )


def test_an_engine_failing_its_golden_samples_on_this_station_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    folder = reversioned(files.engine, "0.2.0", tmp_path / "folder")
    edit_manifest(folder, lambda raw: raw["golden"][0].update(expected_score=123.0))
    wrong = write_engine_file(folder, files.signer.private, tmp_path)
    first = json.loads((folder / "manifest.json").read_text())["golden"][0]["file"]
    message = refused(capsys, station, wrong)
    assert message.startswith(f"tiny@0.2.0 does not pass on this station: golden sample {first} ")
    assert message.endswith(", expected 123 (rtol 0.001, onnxruntime fp32)")


def test_a_full_disk_during_unpack_is_refused_and_cleaned_up(
    capsys: pytest.CaptureFixture[str],
    station: Station,
    files: Files,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENOSPC injected into the unpacker's writes, after the first 100 kB (the real full disk, a
    tmpfs, is tests/integration/test_store_disk.py: it needs root)."""
    written = [0]
    real_write = archive_module.write_all

    def filling(fd: int, data: bytes) -> None:
        written[0] += len(data)
        if written[0] > 100_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fd, data)

    monkeypatch.setattr(archive_module, "write_all", filling)
    assert refused(capsys, station, files.v2) == "cannot unpack model.onnx: No space left on device"


# -- choosing engines ----------------------------------------------------------------------------


def test_an_engine_the_camera_cannot_feed_is_refused(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files, tmp_path: Path
) -> None:
    """A colour camera on this station and a mono engine: every part would be NOK "image",
    so install refuses it in one line (as start-up and a hot swap do), the store unchanged."""
    (tmp_path / "frames").mkdir()
    colour = {
        "kind": "basler", "serial": "0815-0000", "trigger": "software", "pixel_format": "BGR8",
        "roi": [0, 0, 64, 64], "emulation_image_dir": str(tmp_path / "frames"),
    }  # fmt: skip
    config = store_station(tmp_path, files.trusted, camera=colour)
    line = refused(capsys, Station(config, station.store), files.v2)
    assert "camera.pixel_format: BGR8 gives colour (3 channels) frames" in line


def test_install_activate_rollback_remove_and_list(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files
) -> None:
    code, out, err = engine(capsys, station, "install", str(files.v2))
    assert (code, err) == (0, "")
    key = files.signer.key_id[:16]
    assert (
        out == f"installed tiny@0.2.0: signed by key {key}, 3 golden samples pass on "
        "onnxruntime fp32\n"
    )
    assert station.store.active() == V1  # installed, not active
    assert engine(capsys, station, "install", str(files.v3))[0] == 0

    code, out, _ = engine(capsys, station, "activate", "tiny@0.2.0")
    assert code == 0
    assert out.startswith("tiny@0.2.0 is active (was tiny@0.1.0)")
    assert engine(capsys, station, "activate", "tiny@0.3.0")[0] == 0

    code, out, _ = engine(capsys, station, "list", "--json")
    listed = json.loads(out)
    assert [(e["version"], e["active"]) for e in listed] == [
        ("0.1.0", False),
        ("0.2.0", False),
        ("0.3.0", True),
    ]
    assert {e["signer"] for e in listed} == {files.signer.key_id}
    assert all(e["golden_samples"] == 3 and e["backend"] == "onnxruntime fp32" for e in listed)
    assert listed[0]["validation"]["good_images"] > 0
    code, out, _ = engine(capsys, station, "list")
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "SIGNER", "INSTALLED", "ACTIVE", "VALIDATION"]
    assert [row.split()[:3] for row in rows] == [
        ["tiny", v, key] for v in ("0.1.0", "0.2.0", "0.3.0")
    ]
    assert rows[2].split()[4] == "*" and "good_images=" in rows[2]

    # Rollback steps back through the engines that were active, most recent first.
    code, out, _ = engine(capsys, station, "rollback")
    assert out.startswith("rolled back to tiny@0.2.0 (was tiny@0.3.0)")
    assert engine(capsys, station, "remove", "tiny@0.1.0")[0] == 0
    code, _, err = engine(capsys, station, "rollback")
    assert code == 2
    assert err.startswith(
        "partsight: error: tiny@0.2.0 is active and no earlier activation is left to go back to"
    )
    assert len(err.splitlines()) == 1
    code, _, err = engine(capsys, station, "remove", "tiny@0.2.0")
    assert err == (
        "partsight: error: tiny@0.2.0 is the active engine; activate another one first\n"
    )
    assert [i.ref.version for i in station.store.installed()] == ["0.2.0", "0.3.0"]
    code, _, err = engine(capsys, station, "activate", "tiny@0.9.0")
    assert err == "partsight: error: tiny@0.9.0 is not installed\n"
    assert station.store.active() == V2


def test_an_installed_engine_changed_on_disk_is_not_activated(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files
) -> None:
    assert engine(capsys, station, "install", str(files.v2))[0] == 0
    model = station.store.root / "tiny" / "0.2.0" / "bundle" / "model.onnx"
    model.write_bytes(flip_byte(model.read_bytes()))
    code, _, err = engine(capsys, station, "activate", "tiny@0.2.0")
    assert code == 2
    assert err.endswith("model.onnx does not match its sha256 (tampered?)\n")
    assert len(err.splitlines()) == 1
    assert station.store.active() == V1


def test_the_engine_judging_parts_is_the_one_whose_signature_was_checked(
    station: Station, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest is read once: its signature is checked on those bytes and the engine is
    built from them. A manifest changed on disk right after the check (here: a threshold
    raised by whoever can write the store) is not the one used."""
    from edge.daemon.engines import EngineSource
    from edge.store import store as store_module

    real = store_module.read_signed_manifest

    def then_tampered(root: Path, trust: object) -> tuple[str, bytes]:
        checked = real(root, trust)  # type: ignore[arg-type]
        edit_manifest(root, lambda raw: raw["scoring"].update(threshold=1e9))
        return checked

    monkeypatch.setattr(store_module, "read_signed_manifest", then_tampered)
    active = EngineSource(load_config(station.config)).open()
    assert active.signer is not None and active.inspector.threshold < 1e9


def test_every_install_step_is_logged_in_order(
    capsys: pytest.CaptureFixture[str],
    station: Station,
    files: Files,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        assert engine(capsys, station, "install", str(files.v2), "--activate")[0] == 0
    steps = [
        "installing ",
        "signature by key ",
        "files (",
        "tiny@0.2.0: signed by ",
        "golden samples check out",
        "installed tiny@0.2.0 in ",
        "active engine is now tiny@0.2.0",
    ]
    messages = [r.getMessage() for r in caplog.records]
    found = [next(i for i, m in enumerate(messages) if step in m) for step in steps]
    assert found == sorted(found), messages


def test_the_store_refuses_a_user_other_than_its_owner(
    capsys: pytest.CaptureFixture[str], station: Station, files: Files
) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a folder's owner needs root")
    os.chown(station.store.root, 65534, 65534)
    code, _, err = engine(capsys, station, "install", str(files.v2))
    assert code == 2
    assert "belongs to nobody: run engine commands as that user (sudo -u nobody" in err


def test_engine_references_and_version_precedence() -> None:
    assert EngineRef.parse("housing-top@1.2.0") == EngineRef("housing-top", "1.2.0")
    # "active" is the store's pointer file: an engine so named would take its place
    for bad in ("tiny", "..@1.0.0", ".hidden@1.0.0", "tiny@1.0", "tiny@../1.0.0", "active@1.0.0"):
        with pytest.raises(StoreError):
            EngineRef.parse(bad)
    ordered = ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]  # fmt: skip
    assert sorted(ordered, key=precedence) == ordered  # semver.org section 11's own example
    assert not newer("1.0.0+build.2", "1.0.0+build.1")  # build metadata does not count


def test_keys_outside_the_trusted_folder_are_refused_as_such(tmp_path: Path) -> None:
    from edge.store import TrustedKeys

    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no trusted public keys"):
        TrustedKeys.load(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.pub").write_text("not a key\n")
    with pytest.raises(StoreError, match=r"x\.pub: not a PEM public key"):
        TrustedKeys.load(tmp_path / "bad")
