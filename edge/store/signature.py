"""Engine signatures: Ed25519 (RFC 8032) over the canonical manifest.

The canonical manifest is the exact bytes of `manifest.json` as stored in the bundle, never a
re-serialisation, so the signer and every verifier sign and check the same bytes whatever JSON
library they use. What is signed is those bytes behind a domain-separation prefix,
`b"partsight.manifest/1\\n" + manifest_bytes`, so a signature made for anything else with the
same key can never pass for an engine's. The manifest lists the sha256 and size of every other
file of the bundle, so the signature covers the whole engine.

`manifest.sig` is a small JSON document (SIGNATURE_SCHEMA):

    {"schema": "partsight.signature/1", "algorithm": "ed25519",
     "key_id": "<sha256 of the raw 32-byte public key, hex>", "signature": "<base64, 64 bytes>"}

Keys are PEM files: private keys PKCS#8 (written by `partsight-train keygen`, never part of a
bundle), public keys SubjectPublicKeyInfo. A station trusts the public keys in one folder (the
configuration's `[engine] trusted_keys`): every `*.pub` file there is one key, and a `.pub` file
that is not an Ed25519 public key is an error, so a mistake in the trust store never goes
unnoticed. Verification uses the `cryptography` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.bundle import MANIFEST, SIGNATURE
from edge.store.errors import SignatureError

log = logging.getLogger(__name__)

SIGNATURE_SCHEMA = "partsight.signature/1"
DOMAIN = b"partsight.manifest/1\n"
PUBLIC_KEY_SUFFIX = ".pub"
MAX_PUBLIC_KEY_BYTES = 16 << 10
MAX_SIGNATURE_BYTES = 4 << 10  # manifest.sig is about 300 bytes


class SignatureFile(BaseModel):
    """The parsed manifest.sig."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    schema_id: Literal["partsight.signature/1"] = Field(alias="schema")
    algorithm: Literal["ed25519"]
    key_id: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the raw public key")
    signature: str = Field(description="base64 of the 64-byte Ed25519 signature")


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key's id: sha256 of its raw 32 bytes, 64 hex digits (shown shortened to 16)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def short_id(full: str) -> str:
    return full[:16]


def signed_message(manifest_bytes: bytes) -> bytes:
    """The bytes an engine signature is made over (see the module docstring)."""
    return DOMAIN + manifest_bytes


def encode_signature(signer: str, signature: bytes) -> bytes:
    """manifest.sig's bytes for a 64-byte Ed25519 `signature` by the key with id `signer`."""
    document = {
        "schema": SIGNATURE_SCHEMA,
        "algorithm": "ed25519",
        "key_id": signer,
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def parse_signature(data: bytes) -> tuple[str, bytes]:
    """(key id, raw signature) from manifest.sig's bytes; SignatureError if malformed."""
    try:
        parsed = SignatureFile.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise SignatureError(f"manifest.sig is malformed ({where}: {first['msg']})") from None
    try:
        raw = base64.b64decode(parsed.signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("manifest.sig is malformed (signature is not base64)") from None
    if len(raw) != 64:
        raise SignatureError(f"manifest.sig is malformed (signature has {len(raw)} bytes, not 64)")
    return parsed.key_id, raw


def load_public_key(path: Path) -> Ed25519PublicKey:
    """One PEM public key file; SignatureError unless it holds exactly an Ed25519 key."""
    try:
        data = path.read_bytes()[: MAX_PUBLIC_KEY_BYTES + 1]
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_PUBLIC_KEY_BYTES:
        raise SignatureError(f"{path}: too large for a public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a station accepts engine signatures from, by key id."""

    folder: Path
    keys: Mapping[str, Ed25519PublicKey]

    @classmethod
    def load(cls, folder: Path) -> TrustedKeys:
        """Every `*.pub` file in `folder`. SignatureError for a missing folder, a bad key file,
        or no key at all (a station that trusts nobody cannot install anything)."""
        if not folder.is_dir():
            raise SignatureError(f"{folder}: trusted keys folder not found")
        keys: dict[str, Ed25519PublicKey] = {}
        for path in sorted(folder.iterdir()):
            if path.suffix != PUBLIC_KEY_SUFFIX or not path.is_file():
                continue
            key = load_public_key(path)
            keys[key_id(key)] = key
        if not keys:
            raise SignatureError(f"{folder}: no trusted public keys (*{PUBLIC_KEY_SUFFIX})")
        log.debug("trusting %d engine signing key(s) from %s", len(keys), folder)
        return cls(folder, keys)

    def verify(self, manifest_bytes: bytes, signature_file: bytes) -> str:
        """Check manifest.sig against the manifest's exact bytes; the signer's key id, or
        SignatureError saying why not."""
        signer, raw = parse_signature(signature_file)
        key = self.keys.get(signer)
        if key is None:
            raise SignatureError(
                f"signed by key {short_id(signer)}, which is not trusted (not in {self.folder})"
            )
        try:
            key.verify(raw, signed_message(manifest_bytes))
        except InvalidSignature:
            raise SignatureError(
                f"the signature by key {short_id(signer)} does not match the manifest (tampered?)"
            ) from None
        return signer


def check_folder_signature(root: Path, trust: TrustedKeys) -> str:
    """Verify the signature of the bundle folder `root` (its manifest.json against its
    manifest.sig); the signer's key id, or SignatureError. The files' hashes are the bundle
    loader's to check (edge.bundle.load_bundle)."""
    return read_signed_manifest(root, trust)[0]


def read_signed_manifest(root: Path, trust: TrustedKeys) -> tuple[str, bytes]:
    """(signer's key id, the manifest's bytes) of the bundle folder `root`, its signature
    checked against the trusted keys; SignatureError otherwise. Hand the bytes to
    edge.bundle.load_bundle, so that the manifest used is the one whose signature was checked,
    not a second reading of a file that may have changed since."""
    try:
        manifest_bytes = (root / MANIFEST).read_bytes()
    except OSError as exc:
        raise SignatureError(f"{root}: cannot read {MANIFEST}: {exc.strerror}") from None
    try:
        signature = (root / SIGNATURE).read_bytes()[: MAX_SIGNATURE_BYTES + 1]
    except FileNotFoundError:
        raise SignatureError(f"{root}: not signed (no {SIGNATURE})") from None
    except OSError as exc:
        raise SignatureError(f"{root}: cannot read {SIGNATURE}: {exc.strerror}") from None
    return trust.verify(manifest_bytes, signature), manifest_bytes
