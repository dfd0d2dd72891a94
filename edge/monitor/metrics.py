"""The metrics the monitor watches: what each is read from, how it is charted, how it is told.

Three kinds:

- rates (Bernoulli CUSUM): per part, did it count? The overall reject rate and one per reason
  of edge/daemon/verdict.py, plus `nuisance` (an anomaly the classifier passed);
- means (CUSUM or EWMA on standardised values): per part, a number. Positive quantities whose
  changes are relative (score, brightness, contrast, focus) are charted on the log scale and
  told in percent; positions in pixels or degrees;
- levels (fixed limits with hysteresis): recent quantiles (latency p99, the OK parts' score
  p99) and the station's state (outbox, camera, an idle line), sampled by the daemon.

Changing this catalogue changes the configuration (edge/config/monitor.py, MetricsConfig has
one field per name; a test checks they agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge.monitor.observation import PartObservation

Severity = Literal["info", "warning", "critical"]

# The reasons of edge/daemon/verdict.py (not imported: the monitor does not depend on the
# daemon), and "nuisance", an OK whose anomaly the heatmap classifier judged harmless.
REASONS = (
    "anomaly",
    "nuisance",
    "registration",
    "camera",
    "image",
    "inference",
    "timeout",
    "overload",
)


@dataclass(frozen=True)
class RateMetric:
    name: str
    label: str  # "anomaly rejects": completes "... up from 2.0 % to 9.6 %"
    severity: Severity
    counts: Callable[[PartObservation], bool]


@dataclass(frozen=True)
class MeanMetric:
    name: str
    label: str  # "image brightness"
    severity: Severity
    read: Callable[[PartObservation], float | None]
    log: bool = False  # charted as ln(x), changes told in %
    unit: str = ""  # for changes told as a difference
    angle: bool = False  # degrees, compared modulo 360
    figure: str | None = None  # the manifest's validation figures good_<figure>_mean / _std


@dataclass(frozen=True)
class LevelMetric:
    name: str
    label: str
    severity: Severity
    high: float  # default limits; their meaning is the metric's (see edge/config/monitor.py)
    low: float
    unit: str = ""


def _reason(reason: str) -> Callable[[PartObservation], bool]:
    return lambda o: o.reason == reason


def _ok_score(o: PartObservation) -> float | None:
    # a nuisance passed as OK scored above the threshold: not part of the good population
    return o.score if o.verdict == "OK" and not o.reason else None


def _registered(read: Callable[[PartObservation], float | None]) -> Callable[..., float | None]:
    return lambda o: None if o.reason == "registration" else read(o)


RATES: tuple[RateMetric, ...] = (
    RateMetric("nok_rate", "rejects (all reasons)", "warning", lambda o: o.verdict != "OK"),
    RateMetric("anomaly_rate", "anomaly rejects", "warning", _reason("anomaly")),
    RateMetric("nuisance_rate", "nuisances passed", "warning", _reason("nuisance")),
    RateMetric("registration_rate", "unregistered parts", "warning", _reason("registration")),
    RateMetric("camera_rate", "camera faults", "critical", _reason("camera")),
    RateMetric("image_rate", "unusable images", "warning", _reason("image")),
    RateMetric("inference_rate", "inference failures", "critical", _reason("inference")),
    RateMetric("timeout_rate", "parts past their deadline", "critical", _reason("timeout")),
    RateMetric("overload_rate", "parts dropped for overload", "critical", _reason("overload")),
)

MEANS: tuple[MeanMetric, ...] = (
    MeanMetric("score", "OK parts' anomaly score", "warning", _ok_score, log=True, figure="score"),
    MeanMetric(
        "confidence",
        "registration confidence",
        "warning",
        _registered(lambda o: o.confidence),
        figure="confidence",
    ),
    MeanMetric(
        "pose_x",
        "part position x",
        "warning",
        _registered(lambda o: o.pose_x),
        unit=" px",
        figure="pose_x",
    ),
    MeanMetric(
        "pose_y",
        "part position y",
        "warning",
        _registered(lambda o: o.pose_y),
        unit=" px",
        figure="pose_y",
    ),
    MeanMetric(
        "pose_angle",
        "part angle",
        "warning",
        _registered(lambda o: o.pose_angle),
        unit="°",
        angle=True,
        figure="pose_angle",
    ),
    MeanMetric(
        "brightness",
        "image brightness",
        "warning",
        lambda o: o.brightness,
        log=True,
        figure="brightness",
    ),
    MeanMetric(
        "contrast",
        "image contrast",
        "warning",
        lambda o: o.contrast,
        log=True,
        figure="contrast",
    ),
    MeanMetric("focus", "image focus", "warning", lambda o: o.focus, log=True, figure="focus"),
)

LEVELS: tuple[LevelMetric, ...] = (
    LevelMetric("score_p99", "OK parts' score p99", "warning", high=0.5, low=0.25),
    LevelMetric("latency_p99", "latency p99", "critical", high=0.8, low=0.6, unit=" ms"),
    LevelMetric("outbox_depth", "MQTT outbox", "warning", high=500, low=50),
    LevelMetric("camera_lost", "camera connection", "critical", high=2.0, low=0.0, unit=" s"),
    LevelMetric("camera_reconnects", "camera outages", "warning", high=3, low=0),
    LevelMetric("line_idle", "part flow", "info", high=120.0, low=0.0, unit=" s"),
)

LABELS: dict[str, str] = {
    **{m.name: m.label for m in RATES},
    **{m.name: m.label for m in MEANS},
    **{m.name: m.label for m in LEVELS},
}

NAMES: tuple[str, ...] = (
    *(m.name for m in RATES),
    *(m.name for m in MEANS),
    *(m.name for m in LEVELS),
)
