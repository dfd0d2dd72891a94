"""The engine store's exceptions.

StoreError (PartSightError)   an install, activation, rollback or removal that must not happen
├── SignatureError            no signature, a signer that is not trusted, or one that does not
│                             match the manifest
└── ArchiveError              an engine file that is not a complete, safe bundle archive

Each carries a one-line message meant for the CLI, the log and the MQTT command response.
"""

from __future__ import annotations

from edge.errors import PartSightError


class StoreError(PartSightError):
    """An engine store operation that was refused or failed; the store is left as it was."""


class SignatureError(StoreError):
    """The engine's signature is missing, untrusted or does not match its manifest."""


class ArchiveError(StoreError):
    """The engine file is not a complete, safe archive of one bundle."""
