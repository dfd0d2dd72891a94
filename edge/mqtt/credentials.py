"""Reading the MQTT password: from a file, or from a systemd credential
(`LoadCredential=` / `SetCredentialEncrypted=` puts it in $CREDENTIALS_DIRECTORY/<name>).

Errors name the file, never its content.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edge import secret_file
from edge.mqtt.errors import MqttConfigError

CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"


def credential_path(name: str, environ: Mapping[str, str]) -> Path:
    """Where systemd put credential `name` for this service."""
    if not name or "/" in name or name in (".", ".."):
        raise MqttConfigError(f"credential name {name!r} is not a plain file name")
    directory = environ.get(CREDENTIALS_ENV)
    if not directory:
        raise MqttConfigError(
            f"MQTT password credential {name!r} is configured but ${CREDENTIALS_ENV} is not set "
            "(run under systemd with LoadCredential=, or use password_file)"
        )
    return Path(directory) / name


def read_secret_file(path: Path) -> str:
    """The first line of `path` without its line ending; an empty secret is an error."""
    try:
        return secret_file.read_secret_file(path, "MQTT password")
    except secret_file.SecretFileError as exc:
        raise MqttConfigError(str(exc)) from None


def read_password(
    password_file: Path | None, credential: str | None, environ: Mapping[str, str]
) -> str | None:
    """The password from whichever source is configured, or None when neither is."""
    if password_file is not None:
        return read_secret_file(Path(password_file))
    if credential is not None:
        return read_secret_file(credential_path(credential, environ))
    return None
