"""[monitor]: statistical process control on the station's own production metrics
(edge/monitor/), with alerts to SCADA on the `alert` topic.

Every chart is standardised against a baseline learnt from the first `warmup_parts` parts (or,
with baseline = "manifest", from the engine's validation figures where it has them). The
defaults give each chart an in-control average run length (ARL₀, parts between false alarms)
of about 500,000 parts, computed with the Markov chains of edge.monitor.arl:

- means, CUSUM k = 0.5, h = 12: ARL₀ ≈ 518,000; a 1σ shift is found in ≈ 24 parts, 2σ in ≈ 9
  (values winsorised at ±4σ first: with these limits one wild part never raises an alert);
- means, EWMA λ = 0.1, L = 4.7: ARL₀ ≈ 552,000 with asymptotic limits (a little less with the
  default exact limits, which see a process already off at the start sooner: 4.6 % less at
  L = 2.814); 1σ in ≈ 30;
- rates, Bernoulli CUSUM: ARL₀ = 500,000 exactly (its Markov chain), for the baseline rate it
  is designed on, the upper end of the warm-up's one-sigma Wilson interval (so a little above
  the rate measured); tuned to a tripling (ratio = 3): a 2 % reject rate going to 10 % is
  seen in ≈ 120 parts.

With the dozen charts that move on a healthy line, that is about one false alarm per 40,000
parts (0.13 expected in a 5,000-part run) — on normal data with a known baseline. Real metrics
are rarely that tidy: a baseline learnt from 500 parts, skewed or autocorrelated data all
shorten ARL₀, which is why the defaults start this high.

The level metrics (latencies, outbox, camera, idle line) are thresholds with hysteresis: they
raise above `high` and clear at or below `low`, and have no statistical false-alarm rate.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, model_validator

from edge.config.base import ConfigPath, StrictModel, context_of

Detector = Literal["cusum", "ewma"]
Limits = Literal["exact", "asymptotic"]


class _Aliased(StrictModel):
    # `lambda` is a Python keyword: the field is lambda_, the TOML key `lambda`.
    model_config = ConfigDict(**{**StrictModel.model_config, "populate_by_name": True})


class CusumConfig(StrictModel):
    """The two-sided tabular CUSUM (Montgomery §9.1), on values standardised by the baseline."""

    k: float = Field(0.5, ge=0, description="reference value, σ: half the shift to detect")
    h: float = Field(12.0, gt=0, description="decision interval, σ (ARL₀ ≈ 518,000 at k = 0.5)")


class EwmaConfig(_Aliased):
    """The EWMA chart (Lucas & Saccucci 1990), on values standardised by the baseline."""

    lambda_: float = Field(
        0.1, alias="lambda", gt=0, le=1, description="smoothing weight λ in (0, 1]"
    )
    L: float = Field(4.7, gt=0, description="limit width in σ of the EWMA (ARL₀ ≈ 552,000)")
    limits: Limits = Field(
        "exact", description="exact: time-varying limits from the first part; asymptotic"
    )


class RatesConfig(StrictModel):
    """The Bernoulli CUSUM for reject rates (Reynolds & Stoumbos 1999)."""

    ratio: float = Field(3.0, gt=1, description="detect the rate rising to ratio × baseline")
    arl0: float = Field(
        500_000.0, ge=10, description="in-control average run length, parts (h follows from it)"
    )
    min_rate: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="floor of a baseline rate (a warm-up without a single reject says little)",
    )


class MeanMetricConfig(_Aliased):
    """One mean metric: on/off and, optionally, its own chart settings."""

    enabled: bool = Field(True, description="watch this metric")
    detector: Detector | None = Field(None, description="cusum | ewma; default: monitor.detector")
    k: float | None = Field(None, ge=0, description="CUSUM k for this metric")
    h: float | None = Field(None, gt=0, description="CUSUM h for this metric")
    lambda_: float | None = Field(
        None, alias="lambda", gt=0, le=1, description="EWMA λ for this metric"
    )
    L: float | None = Field(None, gt=0, description="EWMA L for this metric")
    limits: Limits | None = Field(None, description="EWMA limits for this metric")

    @model_validator(mode="after")
    def _one_chart(self) -> MeanMetricConfig:
        cusum = self.k is not None or self.h is not None
        ewma = self.lambda_ is not None or self.L is not None or self.limits is not None
        if self.detector == "cusum" and ewma:
            raise ValueError("lambda, L and limits are EWMA settings; this metric uses cusum")
        if self.detector == "ewma" and cusum:
            raise ValueError("k and h are CUSUM settings; this metric uses ewma")
        if cusum and ewma:
            raise ValueError("set the settings of one chart: k and h (cusum) or lambda and L")
        return self


class RateMetricConfig(StrictModel):
    """One reject rate: on/off and, optionally, its own Bernoulli CUSUM settings."""

    enabled: bool = Field(True, description="watch this rate")
    ratio: float | None = Field(None, gt=1, description="detect ratio × baseline")
    arl0: float | None = Field(None, ge=10, description="in-control ARL, parts")


class LevelMetricConfig(StrictModel):
    """One level with fixed limits: raised above `high`, cleared at or below `low`."""

    enabled: bool = Field(True, description="watch this level")
    high: float | None = Field(None, ge=0, description="raise above this (default per metric)")
    low: float | None = Field(None, ge=0, description="clear at or below this")

    @model_validator(mode="after")
    def _ordered(self) -> LevelMetricConfig:
        if self.high is not None and self.low is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class CameraReconnectsConfig(LevelMetricConfig):
    window_s: float = Field(600.0, gt=0, description="count camera outages over this window")


def _off() -> RateMetricConfig:
    return RateMetricConfig(enabled=False)


class MetricsConfig(StrictModel):
    """Per metric settings; a metric not listed keeps its defaults. Names are fixed: an
    unknown one is an error."""

    nok_rate: RateMetricConfig = Field(
        default_factory=_off,
        description="all rejected parts (off by default: the per-reason rates say why)",
    )
    anomaly_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="parts rejected for an anomaly (reason anomaly)",
    )
    nuisance_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="anomalies the classifier passed as nuisances (reason nuisance)",
    )
    registration_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="parts that could not be registered",
    )
    camera_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="parts without a usable frame: failed grabs, lost frames",
    )
    image_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="frames the engine cannot take",
    )
    inference_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="inference backend failures",
    )
    timeout_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="parts without a verdict by the deadline",
    )
    overload_rate: RateMetricConfig = Field(
        default_factory=RateMetricConfig,
        description="parts dropped because the pipeline was full",
    )
    score: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="OK parts' anomaly score (log scale)",
    )
    confidence: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="registration confidence of registered parts",
    )
    pose_x: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="where registered parts lie in the frame, x (px)",
    )
    pose_y: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="where registered parts lie in the frame, y (px)",
    )
    pose_angle: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="registered parts' angle (degrees)",
    )
    brightness: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="frame brightness, mean grey (log scale)",
    )
    contrast: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="frame contrast, grey std / mean (log scale)",
    )
    focus: MeanMetricConfig = Field(
        default_factory=MeanMetricConfig,
        description="frame focus, normalised variance of the Laplacian (log scale)",
    )
    score_p99: LevelMetricConfig = Field(
        default_factory=LevelMetricConfig,
        description="OK parts' recent score p99; high/low: fraction of the way from its "
        "baseline to the threshold (0.5 / 0.25)",
    )
    latency_p99: LevelMetricConfig = Field(
        default_factory=LevelMetricConfig,
        description="recent trigger-to-verdict p99; high/low: fraction of "
        "pipeline.deadline_ms (0.8 / 0.6)",
    )
    outbox_depth: LevelMetricConfig = Field(
        default_factory=LevelMetricConfig,
        description="MQTT messages waiting in the outbox; high/low: messages (500 / 50)",
    )
    camera_lost: LevelMetricConfig = Field(
        default_factory=LevelMetricConfig,
        description="seconds the camera has been disconnected; high/low (2 / 0)",
    )
    camera_reconnects: CameraReconnectsConfig = Field(
        default_factory=CameraReconnectsConfig,
        description="camera outages within window_s; high/low (3 / 0)",
    )
    line_idle: LevelMetricConfig = Field(
        default_factory=LevelMetricConfig,
        description="seconds without a part while the camera is connected; high/low (120 / 0)",
    )


class MonitorConfig(StrictModel):
    enabled: bool = Field(True, description="watch the production metrics and raise alerts")
    baseline: Literal["warmup", "manifest"] = Field(
        "warmup",
        description="warmup: learn each baseline from the first warmup_parts parts; manifest: "
        "take it from the engine's validation figures where it has them (else warm up)",
    )
    warmup_parts: int = Field(500, ge=20, description="parts each baseline is learnt from")
    detector: Detector = Field("cusum", description="the chart for mean metrics: cusum | ewma")
    cusum: CusumConfig = Field(default_factory=CusumConfig, description="CUSUM defaults")
    ewma: EwmaConfig = Field(default_factory=EwmaConfig, description="EWMA defaults")
    rates: RatesConfig = Field(
        default_factory=RatesConfig, description="Bernoulli CUSUM defaults for reject rates"
    )
    clear_parts: int = Field(
        100, ge=1, description="an alert clears after this many parts back in control"
    )
    clear_fraction: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="back in control: the chart's statistic within this fraction of its limit",
    )
    min_interval_s: float = Field(
        600.0, ge=0, description="a metric raises at most one alert per this many seconds"
    )
    snapshot_s: float = Field(
        10.0, gt=0, description="publish the metrics snapshot and save the state this often"
    )
    queue: int = Field(4096, ge=16, description="results waiting for the monitor (then dropped)")
    state_file: ConfigPath = Field(
        description="baselines, charts and active alerts across restarts; default: "
        "<state_dir>/monitor-state.json"
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="per metric: on/off and chart settings"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_state_file(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "state_file" not in data:
            path = context_of(info).effective_state_dir() / "monitor-state.json"
            data = {**data, "state_file": path}
        return data

    @model_validator(mode="after")
    def _charts_match(self) -> MonitorConfig:
        # A metric's chart settings must belong to the chart it uses, its own or the default.
        for name in MetricsConfig.model_fields:
            metric = getattr(self.metrics, name)
            if not isinstance(metric, MeanMetricConfig) or metric.detector is not None:
                continue
            if self.detector == "cusum" and (metric.lambda_ is not None or metric.L is not None):
                raise ValueError(
                    f"metrics.{name}: lambda and L are EWMA settings; the metric uses cusum "
                    '(set detector = "ewma" for it, or monitor.detector)'
                )
            if self.detector == "ewma" and (metric.k is not None or metric.h is not None):
                raise ValueError(
                    f"metrics.{name}: k and h are CUSUM settings; the metric uses ewma "
                    '(set detector = "cusum" for it, or monitor.detector)'
                )
        return self
