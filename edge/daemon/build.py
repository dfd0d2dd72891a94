"""Building the daemon's default components from the configuration."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge.config import BaslerCameraConfig, Config
from edge.daemon.acquisition import AcquisitionSettings, TriggerMode

if TYPE_CHECKING:
    from edge.mqtt import MqttPublisher, Outbox

log = logging.getLogger(__name__)

# The replay camera has no grab timeout of its own: how long to wait for its next frame.
_REPLAY_GRAB_TIMEOUT_S = 1.0


def trigger_mode(config: Config) -> TriggerMode:
    camera = config.camera
    if isinstance(camera, BaslerCameraConfig):
        return camera.trigger
    return "hardware"  # a replay delivers frames at its own pace, like a hardware trigger


def acquisition_settings(config: Config) -> AcquisitionSettings:
    camera, pipeline = config.camera, config.pipeline
    mode = trigger_mode(config)
    if isinstance(camera, BaslerCameraConfig):
        timeout = camera.grab_timeout_s
        free_run = mode == "software" and pipeline.trigger.free_run
    else:
        timeout = max(_REPLAY_GRAB_TIMEOUT_S, 2.0 / camera.rate_hz)
        free_run = camera.free_run
    return AcquisitionSettings(
        trigger=mode,
        grab_timeout_s=timeout,
        rate_hz=None if pipeline.trigger.free_run else pipeline.trigger.rate_hz,
        deadline_ms=float(pipeline.deadline_ms),
        heartbeat_s=pipeline.heartbeat_s,
        free_run=free_run,
    )


def open_publisher(config: Config) -> tuple[MqttPublisher, Outbox]:
    """The outbox (opened: it must be usable before a part is judged) and a publisher on it."""
    from edge.mqtt import MqttPublisher, Outbox

    config.mqtt.outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(config.mqtt.outbox)
    try:
        publisher = MqttPublisher(config.mqtt, config.station, outbox)
    except BaseException:
        outbox.close()
        raise
    return publisher, outbox
