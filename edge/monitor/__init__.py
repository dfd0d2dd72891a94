"""Statistical process control on the station's own production metrics (DESIGN.md: "metrics
monitor (EWMA/CUSUM) → alerts").

    monitor = Monitor(config.monitor, engine=key, figures=manifest.validation, deadline_ms=500)
    for event in monitor.observe(PartObservation.from_result(result_payload)): publish(event)

Modules: the charts (cusum, ewma, bernoulli; detector for what they share), their average run
lengths (arl), streaming statistics (streaming), frame statistics shared with the trainer
(frame_stats), baselines (baseline), the metric catalogue (metrics), what a part tells the
monitor (observation), alerts (alerts), one tracker per metric (trackers), the monitor itself
(monitor), its state file (state), and the offline replay behind `partsight monitor` (replay,
plot). numpy and OpenCV only; never torch.
"""

from edge.monitor.alerts import (
    ACTIVE_SCHEMA,
    ALERT_SCHEMA,
    Alert,
    AlertEvent,
    active_payload,
    alert_payload,
)
from edge.monitor.frame_stats import FrameStats, frame_stats
from edge.monitor.monitor import Monitor, StationSample
from edge.monitor.observation import ObservationError, PartObservation
from edge.monitor.state import engine_key, load_state, save_state

__all__ = [
    "ACTIVE_SCHEMA",
    "ALERT_SCHEMA",
    "Alert",
    "AlertEvent",
    "FrameStats",
    "Monitor",
    "ObservationError",
    "PartObservation",
    "StationSample",
    "active_payload",
    "alert_payload",
    "engine_key",
    "frame_stats",
    "load_state",
    "save_state",
]
