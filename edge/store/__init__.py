"""The engine store: signed engine files installed, verified, activated, rolled back, removed.

    store = EngineStore(config.engine_store_dir)
    trust = TrustedKeys.load(config.engine.trusted_keys)
    store.install(Path("housing-top-1.2.0.tar"), trust, validate, activate=True)
    store.rollback(trust)

Modules: `signature` (Ed25519 over the canonical manifest, the trusted keys), `archive` (the
signed tar and its safe reader), `store` (layout, install, activate, rollback, remove),
`pointer` (the atomic `active` pointer), `semver` (version precedence), `faults` (crash points
for tests), `durable` (fsync helpers), `errors`; `cli` is `partsight engine ...`.
"""

from __future__ import annotations

from edge.store.archive import ARCHIVE_SUFFIX, archive_name, unpack
from edge.store.errors import ArchiveError, SignatureError, StoreError
from edge.store.pointer import EngineRef, Pointer
from edge.store.signature import (
    TrustedKeys,
    check_folder_signature,
    key_id,
    read_signed_manifest,
    short_id,
)
from edge.store.store import (
    EngineStore,
    Installed,
    InstallRecord,
    Validation,
    Validator,
    Verified,
)

__all__ = [
    "ARCHIVE_SUFFIX",
    "ArchiveError",
    "EngineRef",
    "EngineStore",
    "InstallRecord",
    "Installed",
    "Pointer",
    "SignatureError",
    "StoreError",
    "TrustedKeys",
    "Validation",
    "Validator",
    "Verified",
    "archive_name",
    "check_folder_signature",
    "key_id",
    "read_signed_manifest",
    "short_id",
    "unpack",
]
