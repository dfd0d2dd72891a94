"""The whole configuration: one strict, typed tree (DESIGN.md, Convention 1).

Sections, in the order they are validated (station first: the others default paths under its
state directory):

    [station]       site, line, station, state_dir
    [camera]        kind = basler | replay
    [engine]        path | store, trusted_keys, threshold; [engine.backend] kind = onnxruntime |
                    tensorrt
    [registration]  device, min_confidence                       (optional)
    [pipeline]      queues, deadline, trigger, heartbeat, watchdog (optional)
    [mqtt]          broker, credentials, TLS, outbox
    [reject]        kind = none
    [monitor]       production-metric charts and alerts           (optional)
    [logging]       level, journald                              (optional)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from edge.config.base import StrictModel
from edge.config.camera import CameraConfig, ReplayCameraConfig
from edge.config.engine import EngineConfig, RegistrationConfig
from edge.config.logs import LoggingConfig
from edge.config.monitor import MonitorConfig
from edge.config.mqtt import MqttConfig
from edge.config.pipeline import PipelineConfig
from edge.config.reject import RejectConfig
from edge.config.station import StationConfig


class Config(StrictModel):
    station: StationConfig = Field(description="who this station is and where its state lives")
    camera: CameraConfig = Field(description="the camera, by kind: basler | replay")
    engine: EngineConfig = Field(description="the engine bundle and the inference backend")
    registration: RegistrationConfig = Field(
        default_factory=RegistrationConfig, description="aligning each part to the template"
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig, description="queues, deadline, trigger and watchdog"
    )
    mqtt: MqttConfig = Field(description="publishing results to SCADA over MQTT")
    reject: RejectConfig = Field(description="the reject output, by kind: none")
    monitor: MonitorConfig = Field(
        description="statistical process control on the production metrics, alerts to SCADA"
    )
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig, description="log level and journald"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_monitor(cls, data: Any) -> Any:
        # Validated (not built by a default factory) even when absent: its default state file
        # lives under the state directory the loader's context has just recorded.
        if isinstance(data, dict) and "monitor" not in data:
            data = {**data, "monitor": {}}
        return data

    @property
    def state_dir(self) -> Path:
        return self.station.state_dir

    @property
    def part_ids_file(self) -> Path:
        return self.station.part_ids_file

    @property
    def engine_store_dir(self) -> Path:
        """The engine store (edge.store): <state_dir>/engines."""
        return self.station.state_dir / "engines"

    def summary(self) -> str:
        """One line for `check-config` and the start-up log (no secrets)."""
        s = self.station
        camera = self.camera
        if isinstance(camera, ReplayCameraConfig):
            cam = f"replay {camera.folder}"
        else:
            cam = f"basler {camera.serial or '(first found)'} trigger={camera.trigger}"
        mqtt = (
            f"mqtt {self.mqtt.host}:{self.mqtt.port}{' tls' if self.mqtt.tls else ''}"
            if self.mqtt.enabled
            else "mqtt off"
        )
        engine = f"store {self.engine_store_dir}" if self.engine.store else str(self.engine.path)
        return (
            f"station {s.site}/{s.line}/{s.station}; camera {cam}; "
            f"engine {engine} ({self.engine.backend.kind}); {mqtt}; "
            f"reject {self.reject.kind}"
        )
