"""Building the daemon's default components from the configuration."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge.config import BaslerCameraConfig, Config
from edge.daemon.acquisition import AcquisitionSettings, TriggerMode
from edge.daemon.verdict import EngineInfo

if TYPE_CHECKING:
    from edge.inspector import Inspector
    from edge.mqtt import MqttPublisher, Outbox

log = logging.getLogger(__name__)

# The replay camera has no grab timeout of its own: how long to wait for its next frame.
_REPLAY_GRAB_TIMEOUT_S = 1.0


def open_inspector(config: Config) -> Inspector:
    """Load the engine and run its golden samples: an engine that disagrees with itself on
    this machine never judges a part (BundleError)."""
    from edge.inspector import Inspector

    inspector = Inspector.open(
        config.engine.path,
        backend=config.engine.backend,
        threshold=config.engine.threshold,
        registration_device=config.registration.device,
        min_confidence=config.registration.min_confidence,
        pass_probability=config.engine.pass_probability,
        ood_margin=config.engine.ood_margin,
    )
    inspector.check_golden()
    return inspector


def engine_info(inspector: object) -> EngineInfo | None:
    """The engine's name and version and the backend that really runs it (after `auto` chose,
    and after an FP16 plan that missed its golden samples was replaced), for an Inspector;
    None for a stand-in engine (tests) with no bundle to describe."""
    from edge.inspector import Inspector

    if not isinstance(inspector, Inspector):
        return None
    manifest = inspector.bundle.manifest
    backend = inspector.backend
    return EngineInfo(manifest.name, manifest.version, backend.name, backend.precision)


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

    settings = config.mqtt.to_settings(config.station)
    config.mqtt.outbox.parent.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(config.mqtt.outbox)
    try:
        publisher = MqttPublisher(settings, outbox)
    except BaseException:
        outbox.close()
        raise
    return publisher, outbox
