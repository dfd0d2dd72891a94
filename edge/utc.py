"""Timestamps as published: ISO 8601 in UTC."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_iso(wall: float) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, e.g. 2024-05-01T12:00:00.123456Z."""
    stamp = datetime.fromtimestamp(wall, tz=timezone.utc).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")
