"""Alerts: what SCADA and the journal are told when a metric leaves its baseline, and when it
comes back.

One Alert per (metric, episode): raised once when the metric's chart signals, cleared once the
chart has been back in control for `clear_parts` parts (levels: at their low limit), and not
raised again for the same metric within `min_interval_s` (AlertGate). Each raise and each clear
is an AlertEvent; the events and the set of active alerts are what `alert_payload` and
`active_payload` put on the `alert` and `alert/active` topics.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from edge.monitor.metrics import LABELS, Severity

ALERT_SCHEMA = "partsight.alert/1"
ACTIVE_SCHEMA = "partsight.alerts/1"

Direction = Literal["up", "down"]
EventKind = Literal["raised", "cleared"]


@dataclass(frozen=True)
class Alert:
    id: str  # "<metric>:<direction>:<part id raised at>": pairs a raise with its clear
    metric: str
    detector: str  # cusum | ewma | bernoulli | limit
    direction: Direction
    severity: Severity
    value: float | None  # the metric's current value when raised (its units)
    baseline: float | None  # its baseline (same units); the limit for levels
    started_part: int | None  # where the change began (the chart's change-point estimate)
    started_time: str | None  # that part's trigger time (ISO 8601 UTC), if known
    raised_part: int | None
    raised_time: str | None
    message: str  # one human sentence

    def __post_init__(self) -> None:
        # Six significant digits, as published: a saved and restored alert is the same alert.
        for key in ("value", "baseline"):
            value = getattr(self, key)
            rounded = None if value is None or not math.isfinite(value) else float(f"{value:.6g}")
            object.__setattr__(self, key, rounded)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Raises KeyError/TypeError/ValueError for a malformed dict."""
        fields = {name: data[name] for name in cls.__dataclass_fields__}
        if fields["direction"] not in ("up", "down"):
            raise ValueError(f"bad direction {fields['direction']!r}")
        return cls(**fields)


@dataclass(frozen=True)
class AlertEvent:
    kind: EventKind
    alert: Alert
    part_id: int | None  # the part at which it happened (None for a station sample)
    time: str | None  # wall-clock time of that part or sample, ISO 8601 UTC
    message: str  # the raise's sentence, or the clear's

    def log_line(self) -> str:
        return f"alert {self.kind}: {self.message} [{self.alert.id}]"


def alert_payload(event: AlertEvent, station: str) -> dict[str, Any]:
    """The `alert` message (QoS 1, durable): one raise or one clear."""
    return {
        "schema": ALERT_SCHEMA,
        "station": station,
        "event": event.kind,
        "part_id": event.part_id,
        "time": event.time,
        "message": event.message,
        "alert": event.alert.as_dict(),
    }


def active_payload(alerts: list[Alert], station: str, time: str | None) -> dict[str, Any]:
    """The retained `alert/active` message: every alert active now (possibly none)."""
    return {
        "schema": ACTIVE_SCHEMA,
        "station": station,
        "time": time,
        "active": [a.as_dict() for a in alerts],
    }


class AlertGate:
    """One metric's alert lifecycle: raise once, clear with hysteresis, rate-limit raises."""

    def __init__(self, clear_parts: int, min_interval_s: float) -> None:
        self.clear_parts = clear_parts
        self.min_interval_s = min_interval_s
        self.active: Alert | None = None
        self.clean = 0  # consecutive in-control parts while active
        self.last_raised_s: float | None = None  # monotonic seconds; not kept across restarts
        self.held = 0  # signals not raised because of the rate limit

    def may_raise(self, now_s: float | None) -> bool:
        """False while the last raise of this metric is younger than min_interval_s."""
        if self.last_raised_s is None or now_s is None:
            return True
        if now_s - self.last_raised_s >= self.min_interval_s or now_s < self.last_raised_s:
            return True
        self.held += 1
        return False

    def raised(self, alert: Alert, now_s: float | None) -> AlertEvent:
        self.active, self.clean = alert, 0
        if now_s is not None:
            self.last_raised_s = now_s
        return AlertEvent("raised", alert, alert.raised_part, alert.raised_time, alert.message)

    def in_control(self, settled: bool) -> bool:
        """Count one part (or sample) while active; True when the alert should clear now."""
        self.clean = self.clean + 1 if settled else 0
        return self.clean >= self.clear_parts

    def cleared(self, part_id: int | None, time: str | None, message: str) -> AlertEvent:
        alert, self.active, self.clean = self.active, None, 0
        assert alert is not None
        return AlertEvent("cleared", alert, part_id, time, message)

    def state(self) -> dict[str, Any]:
        return {
            "active": None if self.active is None else self.active.as_dict(),
            "clean": self.clean,
        }

    def restore(self, state: dict[str, Any]) -> None:
        active = state.get("active")
        self.active = None if active is None else Alert.from_dict(active)
        self.clean = max(0, int(state.get("clean", 0)))


def back_in_control(alert: Alert | None) -> str:
    """The clear's sentence: what is back, and what the raise had said."""
    if alert is None:
        return "back in control"
    label = LABELS.get(alert.metric, alert.metric)
    when = f"part {alert.raised_part}" if alert.raised_part is not None else alert.raised_time
    return f"{label} back in control (raised at {when}: {alert.message})"


# -- sentences ------------------------------------------------------------------------------------


def percent(value: float) -> str:
    """0.0123 → '1.2 %' (rates), with enough digits for small ones."""
    pct = 100.0 * value
    return f"{pct:.2f} %" if pct < 1 else f"{pct:.1f} %"


def number(value: float, unit: str = "") -> str:
    """A value with 3-4 significant digits and its unit."""
    return f"{value:.4g}{unit}"


def over_parts(parts: int) -> str:
    return f"over the last {parts} part{'s' if parts != 1 else ''}"
