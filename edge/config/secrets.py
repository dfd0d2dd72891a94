"""Secrets named by the configuration, read when it is loaded.

The config holds where a secret is (a file, or a systemd credential name), never the secret
itself. Loading reads it into a SecretStr, so a missing or unreadable file fails
`check-config` and start-up, naming the field, and the value never shows in a repr, a dump or
a log line. Reading is edge.secret_file's, shared with the MQTT client: the first line, without
its line ending; an empty secret is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo

from edge.config.base import StrictModel, context_of
from edge.secret_file import read_secret_file

CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"  # set by systemd for LoadCredential=


class LoadedSecret(StrictModel):
    """A secret and where it came from."""

    source: Literal["file", "credential"] = Field(description="where the secret was read from")
    name: str = Field(description="the file path or credential name, as configured")
    path: Path = Field(description="the file it was read from")
    value: SecretStr = Field(description="the secret; str() and repr() show only asterisks")


def read_secret(path: Path, what: str) -> SecretStr:
    """The first line of `path`, read as the MQTT client reads it. Errors name the file and
    `what`, never the content."""
    return SecretStr(read_secret_file(path, what))  # SecretFileError is a ValueError


def _load_file(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, LoadedSecret):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("expected the path of a file holding the secret (a string)")
    path = Path(value)
    if not path.is_absolute():
        path = context_of(info).base_dir / path
    return LoadedSecret(source="file", name=value, path=path, value=read_secret(path, "secret"))


def _load_credential(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, LoadedSecret):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError("expected a systemd credential name (a string)")
    if "/" in value or value in (".", ".."):
        raise ValueError(f"credential name {value!r} is not a plain file name")
    directory = context_of(info).environ.get(CREDENTIALS_DIRECTORY_ENV)
    if not directory:
        raise ValueError(
            f"credential {value!r} is configured but ${CREDENTIALS_DIRECTORY_ENV} is not set "
            "(run under systemd with LoadCredential=, or use a file instead)"
        )
    path = Path(directory) / value
    return LoadedSecret(
        source="credential", name=value, path=path, value=read_secret(path, "credential")
    )


# A file path in the config; the validated value carries the file's content as a SecretStr.
SecretFile = Annotated[LoadedSecret, BeforeValidator(_load_file)]
# A name in $CREDENTIALS_DIRECTORY (systemd LoadCredential=); read the same way.
SecretCredential = Annotated[LoadedSecret, BeforeValidator(_load_credential)]
