"""Loading the configuration file: TOML in, a validated Config out, or a ConfigError listing
every problem with its location (`mqtt.port`, `camera.folder`, `line 3, column 7`)."""

from __future__ import annotations

import codecs
import difflib
import logging
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from edge.config.base import CONTEXT_KEY, LoadContext
from edge.config.errors import ConfigError
from edge.config.model import Config

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

log = logging.getLogger(__name__)

_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_SECRET_KEYS = frozenset({"password", "passwd", "secret", "token"})
# UTF-32 first: its little-endian mark begins with UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the TOML file at `path`.

    Relative paths in it are resolved against the file's folder. `environ` is where
    $STATE_DIRECTORY and $CREDENTIALS_DIRECTORY are looked up (default: the process's).
    Raises ConfigError with every problem found.
    """
    path = Path(path)
    data = _read_toml(path)
    context = LoadContext(
        base_dir=path.absolute().parent, environ=os.environ if environ is None else environ
    )
    try:
        config = Config.model_validate(data, context={CONTEXT_KEY: context})
    except ValidationError as exc:
        raise ConfigError(path, [_describe(err) for err in exc.errors(include_url=False)]) from None
    problems = _backstops(config)
    if problems:
        raise ConfigError(path, problems)
    log.debug("loaded %s: %s", path, config.summary())
    return config


def load_section(path: Path | str, name: str, environ: Mapping[str, str] | None = None) -> Any:
    """One section of a configuration file (e.g. "monitor"), validated exactly as in the whole
    file, without the others: for offline tools that need it but not the station's camera or
    engine. Relative paths resolve against the file's folder. Raises ConfigError (locations as
    `monitor.cusum.h`); KeyError for a name that is not a section."""
    path = Path(path)
    model = Config.model_fields[name].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    data = _read_toml(path).get(name, {})
    context = LoadContext(
        base_dir=path.absolute().parent, environ=os.environ if environ is None else environ
    )
    try:
        return model.model_validate(data, context={CONTEXT_KEY: context})
    except ValidationError as exc:
        errors = [
            _describe({**err, "loc": (name, *err["loc"])}) for err in exc.errors(include_url=False)
        ]
        raise ConfigError(path, errors) from None


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML document in `path`. A UTF-8 byte-order mark (Windows editors write one) is
    accepted; UTF-16 or UTF-32 text (its BOM says so) is refused with what to do about it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read: {exc.strerror or exc}")]) from None
    for bom, encoding in _WIDE_BOMS:
        if raw.startswith(bom):
            why = f"{encoding} text (its byte-order mark says so); save it as UTF-8"
            raise ConfigError(path, [("", why)])
    try:
        text = raw.decode("utf-8-sig")  # drops a UTF-8 byte-order mark
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError(path, [("", why)]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = _TOML_AT.search(message)
        if found is None:
            raise ConfigError(path, [("", f"not valid TOML: {message}")]) from None
        where = f"line {found.group(1)}, column {found.group(2)}"
        raise ConfigError(path, [(where, f"not valid TOML: {message[: found.start()]}")]) from None


def _backstops(config: Config) -> list[tuple[str, str]]:
    # A missing MQTT library shows up now rather than at start-up. Skipped with MQTT off, so
    # paho need not even be installed then.
    if not config.mqtt.enabled:
        return []
    try:
        import edge.mqtt  # noqa: F401
    except ImportError as exc:
        return [("mqtt", f"MQTT support is not installed ({exc}); pip install paho-mqtt")]
    return []


def _describe(err: ErrorDetails) -> tuple[str, str]:
    """(location, message) for one pydantic error, in the config file's own terms."""
    parts, parent = _locate(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        key = parts[-1] if parts else ""
        return ".".join(parts), _unknown_key(key, parent)
    if kind == "union_tag_not_found":
        return ".".join([*parts, "kind"]), "missing; it chooses the implementation"
    if kind == "union_tag_invalid":
        return (
            ".".join([*parts, "kind"]),
            f"{ctx.get('tag')!r} is not one of: {ctx.get('expected_tags')}",
        )
    if kind == "missing":
        return ".".join(parts), "missing (required)"
    if kind in ("value_error", "assertion_error"):
        return ".".join(parts), str(ctx.get("error", err["msg"]))
    return ".".join(parts), err["msg"] + _got(err.get("input"))


def _got(value: Any) -> str:
    # Only short scalars: enough to spot `port = "1883"`, never a whole table.
    if isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 40:
        return f" (got {value!r})"
    return ""


def _unknown_key(key: str, parent: type[BaseModel] | None) -> str:
    if key in _SECRET_KEYS:
        return (
            "unknown key; secrets are never written in the config: use password_file or "
            "password_credential"
        )
    if parent is None:
        return "unknown key"
    known = [field.alias or name for name, field in parent.model_fields.items()]
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return f"unknown key (known here: {', '.join(known)})"


def _locate(loc: tuple[int | str, ...]) -> tuple[list[str], type[BaseModel] | None]:
    """The key path without pydantic's union tags (`camera.replay.folder` -> `camera.folder`),
    and the model holding the last key (for suggesting a key on a typo)."""
    parts: list[str] = []
    model: type[BaseModel] | None = Config
    parent: type[BaseModel] | None = Config
    union: dict[str, type[BaseModel]] | None = None
    for item in loc:
        if union is not None and item in union:
            model, union = union[str(item)], None
            continue
        parent = model
        parts.append(str(item))
        field = model.model_fields.get(str(item)) if model is not None else None
        model, union = None, None
        if field is not None:
            members = _models_in(field.annotation)
            if field.discriminator is not None and len(members) > 1:
                union = {tag: m for m in members for tag in _tags(m, field.discriminator)}
            elif len(members) == 1:
                model = members[0]
    return parts, parent


def _tags(model: type[BaseModel], discriminator: Any) -> tuple[str, ...]:
    """The tag values that select `model` in a discriminated union (its Literal field)."""
    field = model.model_fields.get(str(discriminator))
    return tuple(str(v) for v in typing.get_args(field.annotation)) if field else ()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []
