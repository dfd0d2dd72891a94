"""The line daemon's configuration: one strict, typed tree loaded from a TOML file.

    config = load_config("/etc/partsight/partsight.toml")   # raises ConfigError
    camera_settings = config.camera.to_settings()
    publisher = MqttPublisher(config.mqtt, config.station, outbox)   # the section, whole

See edge/config/model.py for the sections and examples/partsight.toml for a documented file.
"""

from __future__ import annotations

from edge.config.camera import BaslerCameraConfig, CameraConfig, ReplayCameraConfig
from edge.config.check import check_config_main
from edge.config.engine import (
    AutoBackendConfig,
    BackendConfig,
    EngineConfig,
    OnnxRuntimeBackendConfig,
    OnnxRuntimeSettings,
    RegistrationConfig,
    TensorRtBackendConfig,
    TensorRtSettings,
)
from edge.config.errors import ConfigError
from edge.config.loader import load_config
from edge.config.logs import LoggingConfig
from edge.config.model import Config
from edge.config.monitor import MonitorConfig
from edge.config.mqtt import MqttConfig
from edge.config.pipeline import PipelineConfig, TriggerConfig, WatchdogConfig
from edge.config.reject import NoneRejectConfig, RejectConfig
from edge.config.secrets import LoadedSecret
from edge.config.station import StationConfig

__all__ = [
    "AutoBackendConfig",
    "BackendConfig",
    "BaslerCameraConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "EngineConfig",
    "LoadedSecret",
    "LoggingConfig",
    "MonitorConfig",
    "MqttConfig",
    "NoneRejectConfig",
    "OnnxRuntimeBackendConfig",
    "OnnxRuntimeSettings",
    "PipelineConfig",
    "RegistrationConfig",
    "RejectConfig",
    "ReplayCameraConfig",
    "StationConfig",
    "TensorRtBackendConfig",
    "TensorRtSettings",
    "TriggerConfig",
    "WatchdogConfig",
    "check_config_main",
    "load_config",
]
