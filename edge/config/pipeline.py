"""[pipeline]: queue sizes, the per-part deadline, the software trigger and the watchdog."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.base import StrictModel


class TriggerConfig(StrictModel):
    """When the daemon triggers a camera set to trigger = 'software' (ignored for 'hardware')."""

    rate_hz: float | None = Field(None, gt=0, description="trigger at this fixed rate")
    free_run: bool = Field(
        False, description="trigger the next part as soon as the pipeline has room for it"
    )

    @model_validator(mode="after")
    def _one_mode(self) -> TriggerConfig:
        if (self.rate_hz is None) == (not self.free_run):
            raise ValueError("set exactly one of rate_hz or free_run = true")
        return self


class WatchdogConfig(StrictModel):
    """The systemd watchdog (the unit's WatchdogSec=): fed only while parts or idle heartbeats
    really flow, so a stalled pipeline gets the daemon restarted."""

    enabled: bool = Field(True, description="feed the watchdog when systemd asks for it")
    feed_fraction: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="feed at most every feed_fraction x WatchdogSec (systemd advises 0.5)",
    )


class PipelineConfig(StrictModel):
    frame_queue: int = Field(
        4, ge=1, le=1024, description="grabbed frames waiting for registration"
    )
    inference_queue: int = Field(
        8, ge=1, le=1024, description="registered parts waiting for the inference backend"
    )
    output_queue: int = Field(
        64, ge=1, le=65536, description="verdicts waiting for the reject output, MQTT, monitor"
    )
    deadline_ms: int = Field(
        500,
        gt=0,
        description="from trigger to verdict; a part without a verdict by then is rejected "
        "(NOK, reason 'deadline')",
    )
    trigger: TriggerConfig = Field(
        default_factory=lambda: TriggerConfig(free_run=True),
        description="software trigger pacing: rate_hz = N, or free_run = true (the default)",
    )
    heartbeat_s: float = Field(
        2.0,
        gt=0,
        description="with no part flowing, the pipeline still proves it is alive this often "
        "(keeps feeding the watchdog); keep it well below the unit's WatchdogSec",
    )
    watchdog: WatchdogConfig = Field(
        default_factory=WatchdogConfig, description="systemd watchdog feeding"
    )
