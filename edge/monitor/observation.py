"""What the monitor learns from one part, read from the part's published result.

The daemon hands the monitor the very `result` payload it publishes (edge/daemon/payload.py,
edge/mqtt/result.schema.json), and `partsight monitor` replays captured ones, so the line and
the offline replay feed the monitors exactly the same numbers. The JSON lines of
`partsight inspect` are read too; they have no part id, times or frame statistics (the part
index stands in for the id, and the metrics that need the rest are not fed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ObservationError(ValueError):
    """A line that is not a result the monitor can read (the message says why)."""


@dataclass(frozen=True, slots=True)
class PartObservation:
    part_id: int
    time_s: float | None  # the station's monotonic clock at the trigger, seconds
    time: str | None  # wall-clock time of the trigger, ISO 8601 UTC, for the alert text
    verdict: str  # OK | NOK | ERROR
    reason: str
    score: float | None
    threshold: float | None
    confidence: float | None  # registration confidence
    pose_x: float | None  # px, in the frame
    pose_y: float | None
    pose_angle: float | None  # degrees
    brightness: float | None
    contrast: float | None
    focus: float | None
    latency_ms: float | None  # trigger to verdict

    @property
    def rejected(self) -> bool:
        return self.verdict != "OK"

    @classmethod
    def from_result(cls, payload: Mapping[str, Any]) -> PartObservation:
        """From a `result` payload (schema partsight.result/1). Raises ObservationError."""
        try:
            pose = payload.get("pose") or {}
            frame = payload.get("frame") or {}
            latency = payload.get("latency_ms") or {}
            monotonic = payload.get("trigger_monotonic_ns")
            return cls(
                part_id=int(payload["part_id"]),
                time_s=None if monotonic is None else int(monotonic) / 1e9,
                time=_text(payload.get("trigger_time")),
                verdict=_verdict(payload["verdict"]),
                reason=str(payload.get("reason") or ""),
                score=_number(payload.get("score")),
                threshold=_number(payload.get("threshold")),
                confidence=_number(payload.get("confidence")),
                pose_x=_number(pose.get("x")),
                pose_y=_number(pose.get("y")),
                pose_angle=_number(pose.get("angle_deg")),
                brightness=_number(frame.get("brightness")),
                contrast=_number(frame.get("contrast")),
                focus=_number(frame.get("focus")),
                latency_ms=_number(latency.get("total")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ObservationError(f"not a result payload: {_why(exc)}") from None

    @classmethod
    def from_inspect(cls, line: Mapping[str, Any], index: int) -> PartObservation:
        """From one JSON line of `partsight inspect`; `index` stands in for the part id."""
        try:
            pose = line.get("pose") or {}
            return cls(
                part_id=index,
                time_s=None,
                time=None,
                verdict=_verdict(line["verdict"]),
                reason=str(line.get("reason") or ""),
                score=_number(line.get("score")),
                threshold=_number(line.get("threshold")),
                confidence=_number(line.get("confidence")),
                pose_x=_number(pose.get("x")),
                pose_y=_number(pose.get("y")),
                pose_angle=_number(pose.get("angle_deg")),
                brightness=None,
                contrast=None,
                focus=None,
                latency_ms=None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ObservationError(f"not a line of partsight inspect: {_why(exc)}") from None

    @classmethod
    def read(cls, record: Mapping[str, Any], index: int) -> PartObservation:
        """A result payload (it has a `schema`) or an inspect line, whichever `record` is."""
        if not isinstance(record, Mapping):
            raise ObservationError(f"expected a JSON object, got {type(record).__name__}")
        if "schema" in record:
            schema = str(record["schema"])
            if not schema.startswith("partsight.result/"):
                raise ObservationError(f"not a result: schema {schema!r}")
            return cls.from_result(record)
        return cls.from_inspect(record, index)


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if value is None:
        return None
    if kind is not int:  # bool is not a number here, nor is a string
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _verdict(value: Any) -> str:
    if value not in ("OK", "NOK", "ERROR"):
        raise ValueError(f"verdict {value!r} is not OK, NOK or ERROR")
    return str(value)


def _why(exc: BaseException) -> str:
    return f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
