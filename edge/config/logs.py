"""[logging]: level, and whether to log to journald (see edge.systemd.setup_logging)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from edge.config.base import StrictModel

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class LoggingConfig(StrictModel):
    level: LogLevel = Field("info", description="debug | info | warning | error | critical")
    journald: Literal["auto", "on", "off"] = Field(
        "auto",
        description="auto: journald when run by systemd; on: always; off: plain stderr lines",
    )

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value  # "INFO" is fine too
