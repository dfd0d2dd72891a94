"""Reading a secret from a file (a password file, a systemd credential): the first line, without
its line ending (and without a UTF-8 byte-order mark, which Windows editors write and which
would otherwise become part of the password). Used by the configuration loader and the MQTT
client alike. Errors name the file, never its content."""

from __future__ import annotations

from pathlib import Path


class SecretFileError(ValueError):
    """The secret file cannot be read or holds no secret."""


def read_secret_file(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SecretFileError(f"{path}: cannot read {what}: {why}") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise SecretFileError(f"{path}: {what} file is empty")
    return secret
