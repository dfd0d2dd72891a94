"""[station]: who this station is (its MQTT topic prefix) and where it keeps its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edge.config.base import ConfigPath, StrictModel, TopicLevel, context_of


class StationConfig(StrictModel):
    site: TopicLevel = Field(description="plant or site name; an MQTT topic level (no + # /)")
    line: TopicLevel = Field(description="production line name; an MQTT topic level")
    station: TopicLevel = Field(description="station name on the line; an MQTT topic level")
    state_dir: ConfigPath = Field(
        description=(
            "where the daemon keeps its state (engine store, MQTT outbox, part ids, caches). "
            "Default: $STATE_DIRECTORY when systemd sets it (StateDirectory=), else "
            "/var/lib/partsight. A value set here wins over both."
        )
    )

    @model_validator(mode="before")
    @classmethod
    def _default_state_dir(cls, data: Any, info: ValidationInfo) -> Any:
        # A before-validator rather than a field default: the default depends on the
        # environment the config is loaded in.
        if isinstance(data, dict) and "state_dir" not in data:
            data = {**data, "state_dir": context_of(info).default_state_dir()}
        return data

    @field_validator("state_dir")
    @classmethod
    def _record_state_dir(cls, value: Path, info: ValidationInfo) -> Path:
        context_of(info).state_dir = value  # read by the sections validated after this one
        return value

    @property
    def part_ids_file(self) -> Path:
        """Where PartIdStore keeps the part-id high-water mark."""
        return self.state_dir / "part-ids"
