"""Building blocks of the configuration models: the strict base model, the load context, and
the annotated types for paths and MQTT topic levels.

The loader passes a LoadContext to pydantic (`context={CONTEXT_KEY: ...}`): the folder that
relative paths are resolved against, the environment ($STATE_DIRECTORY,
$CREDENTIALS_DIRECTORY), and the resolved state directory. pydantic validates fields in
declaration order, so `station` (declared first) records the state directory before the
sections whose defaults live under it (MQTT outbox, TensorRT cache) are validated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo

CONTEXT_KEY = "partsight"
DEFAULT_STATE_DIR = Path("/var/lib/partsight")
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"  # set by systemd for StateDirectory=


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not silently fall back to a default), types are
    not coerced (port = "1883" is an error, not 1883), and a loaded config is immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclass
class LoadContext:
    base_dir: Path
    environ: Mapping[str, str]
    state_dir: Path | None = field(default=None)  # filled in while `station` is validated

    @classmethod
    def default(cls) -> LoadContext:
        return cls(base_dir=Path.cwd(), environ=os.environ)

    def default_state_dir(self) -> Path:
        """$STATE_DIRECTORY (its first entry) when systemd set it, else /var/lib/partsight."""
        value = self.environ.get(STATE_DIRECTORY_ENV, "")
        first = value.split(":")[0]
        return Path(first) if first else DEFAULT_STATE_DIR

    def effective_state_dir(self) -> Path:
        return self.state_dir if self.state_dir is not None else self.default_state_dir()


def context_of(info: ValidationInfo) -> LoadContext:
    """The loader's context, or defaults (cwd, process environment) for a model built directly."""
    ctx = info.context
    if isinstance(ctx, dict):
        found = ctx.get(CONTEXT_KEY)
        if isinstance(found, LoadContext):
            return found
    return LoadContext.default()


def _to_path(value: Any) -> Any:
    # Strict mode wants a Path instance; TOML only has strings.
    if isinstance(value, str):
        if not value:
            raise ValueError("empty path")
        return Path(value)
    if isinstance(value, Path):
        return value
    raise ValueError(f"expected a path (a string), got {type(value).__name__}")


def _resolve(value: Path, info: ValidationInfo) -> Path:
    # Relative to the config file's folder, not to whatever the daemon's cwd happens to be.
    return value if value.is_absolute() else context_of(info).base_dir / value


def _existing(value: Path) -> Path:
    if not value.exists():
        raise ValueError(f"{value} does not exist")
    return value


def _existing_dir(value: Path) -> Path:
    if not value.exists():
        raise ValueError(f"{value} does not exist")
    if not value.is_dir():
        raise ValueError(f"{value} is not a folder")
    return value


def _readable_file(value: Path) -> Path:
    if not value.exists():
        raise ValueError(f"{value} does not exist")
    if not value.is_file():
        raise ValueError(f"{value} is not a file")
    if not os.access(value, os.R_OK):
        raise ValueError(f"{value} is not readable")
    return value


# A path from the config, made absolute against the config file's folder.
ConfigPath = Annotated[Path, BeforeValidator(_to_path), AfterValidator(_resolve)]
ExistingPath = Annotated[ConfigPath, AfterValidator(_existing)]
ExistingDir = Annotated[ConfigPath, AfterValidator(_existing_dir)]
ReadableFile = Annotated[ConfigPath, AfterValidator(_readable_file)]

# The same rule as edge.mqtt.topics.check_name (kept here so loading a config never imports
# paho): wildcards and the level separator would change which topics a name matches.
_TOPIC_FORBIDDEN = frozenset("+#/\x00")


def _topic_level(value: str) -> str:
    if not value:
        raise ValueError("must not be empty (it is an MQTT topic level)")
    bad = sorted(_TOPIC_FORBIDDEN.intersection(value))
    if bad:
        shown = " ".join("NUL" if c == "\x00" else c for c in bad)
        raise ValueError(f"{value!r} contains {shown} (not allowed in an MQTT topic level: + # /)")
    return value


TopicLevel = Annotated[str, AfterValidator(_topic_level)]
