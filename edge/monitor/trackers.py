"""One tracker per metric: its warm-up, its baseline, its chart and its alert.

RateTracker and MeanTracker take one part at a time (`observe`) and return the alert event it
caused, if any; LevelTracker is given a value whenever the monitor has one (`check`). All three
persist their state as JSON-ready dicts (`state` / `restore`) and describe themselves for the
metrics snapshot (`snapshot`).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from edge.config.monitor import MeanMetricConfig, MonitorConfig, RateMetricConfig
from edge.monitor.alerts import (
    Alert,
    AlertEvent,
    AlertGate,
    Direction,
    back_in_control,
    number,
    over_parts,
    percent,
)
from edge.monitor.baseline import Baseline, MeanWarmup, chart_value, rate_baseline, wrap_degrees
from edge.monitor.bernoulli import BernoulliCusum, design
from edge.monitor.cusum import TabularCusum
from edge.monitor.detector import ABOVE, BELOW, IN_CONTROL, Detector
from edge.monitor.ewma import Ewma
from edge.monitor.metrics import LevelMetric, MeanMetric, RateMetric
from edge.monitor.observation import PartObservation

log = logging.getLogger(__name__)

WINSOR = 4.0  # standardised values are clipped to ±4 σ before a mean chart takes them
_DISPLAY_WEIGHT = 0.02  # the snapshot's "current value": an EWMA over about 50 parts
_WORDS = {ABOVE: "up", BELOW: "down"}


def _direction(side: int) -> Direction:
    return "up" if side == ABOVE else "down"


class _Tracker:
    """What rate and mean trackers share: the gate, the warm-up count, the change point."""

    detector: Detector | None

    def __init__(self, name: str, config: MonitorConfig) -> None:
        self.name = name
        self.warmup_parts = config.warmup_parts
        self.clear_fraction = config.clear_fraction
        self.gate = AlertGate(config.clear_parts, config.min_interval_s)
        self.baseline: Baseline | None = None
        self.detector = None
        self.display = 0.0  # the snapshot's current value (EWMA), once seen > 0
        self.seen = 0
        self.last: float | None = None  # the latest value (0/1 for a rate)
        # where the current excursion on each side began: (part id, trigger time)
        self.start: dict[int, tuple[int, str | None]] = {}
        self.disabled = ""  # why the chart cannot run, when it cannot

    def _raise(self, side: int, obs: PartObservation, excursion: int) -> AlertEvent | None:
        """The chart signals on `side`: raise, unless the rate limit holds it back."""
        if not self.gate.may_raise(obs.time_s):
            return None
        started = self.start.get(side, (obs.part_id, obs.time))
        alert = self._alert(side, obs, started, max(1, excursion))
        return self.gate.raised(alert, obs.time_s)

    def _settle(self, obs: PartObservation, settled: bool) -> AlertEvent | None:
        """While an alert is active: clear it after clear_parts parts back in control."""
        if self.gate.in_control(settled):
            return self.gate.cleared(obs.part_id, obs.time, back_in_control(self.gate.active))
        return None

    def _alert(
        self, side: int, obs: PartObservation, started: tuple[int, str | None], parts: int
    ) -> Alert:
        raise NotImplementedError

    def _state_common(self) -> dict[str, Any]:
        return {
            "baseline": None if self.baseline is None else self.baseline.as_dict(),
            "detector": None if self.detector is None else self.detector.state(),
            "gate": self.gate.state(),
            "display": self.display,
            "seen": self.seen,
            "start": {str(side): list(start) for side, start in self.start.items()},
        }

    def _restore_common(self, state: dict[str, Any]) -> None:
        self.gate.restore(state["gate"])
        self.display = float(state["display"])
        self.seen = int(state["seen"])
        self.start = {
            int(side): (int(start[0]), None if start[1] is None else str(start[1]))
            for side, start in state.get("start", {}).items()
        }
        if self.detector is not None and state.get("detector") is not None:
            self.detector.restore(state["detector"])

    def status(self) -> str:
        if self.disabled:
            return "off"
        if self.baseline is None:
            return "warmup"
        return "alert" if self.gate.active is not None else "in_control"


class RateTracker(_Tracker):
    """A reject rate on a Bernoulli CUSUM, its p0 learnt over the warm-up."""

    def __init__(self, metric: RateMetric, config: MonitorConfig) -> None:
        super().__init__(metric.name, config)
        own: RateMetricConfig = getattr(config.metrics, metric.name)
        self.metric = metric
        self.counts = metric.counts
        self.ratio = own.ratio or config.rates.ratio
        self.arl0 = own.arl0 or config.rates.arl0
        self.min_rate = config.rates.min_rate
        self.parts = 0  # warm-up
        self.events = 0
        self.chart: BernoulliCusum | None = None

    def observe(self, obs: PartObservation) -> AlertEvent | None:
        hit = self.counts(obs)
        self.last = hit
        self.seen += 1
        self.display += _DISPLAY_WEIGHT * (hit - self.display)
        chart = self.chart
        if chart is None:
            if self.baseline is None and not self.disabled:
                self.parts += 1
                self.events += hit
                if self.parts >= self.warmup_parts:
                    self.set_baseline(rate_baseline(self.events, self.parts, self.min_rate))
            return None
        chart.update(hit)
        if chart.steps == 1:  # the statistic just left zero: a possible change point
            self.start[ABOVE] = (obs.part_id, obs.time)
        if self.gate.active is None:
            if chart.value < chart.design.limit:
                return None
            return self._raise(ABOVE, obs, chart.steps)
        return self._settle(obs, chart.settled(self.clear_fraction))

    def set_baseline(self, baseline: Baseline) -> None:
        try:
            chart = design(baseline.mean, self.ratio, self.arl0)
        except ValueError as exc:
            self.disabled = str(exc)
            log.error("monitor: %s: no chart: %s", self.name, exc)
            return
        self.baseline = baseline
        self.chart = BernoulliCusum(chart)
        self.detector = self.chart
        log.info(
            "monitor: %s baseline %s from %d parts (chart: h %.3g, ARL0 %.0f, %.0f parts to "
            "see %s)",
            self.name,
            percent(baseline.mean),
            baseline.parts,
            chart.h,
            chart.arl0,
            chart.arl1,
            percent(chart.p1),
        )

    def _alert(
        self, side: int, obs: PartObservation, started: tuple[int, str | None], parts: int
    ) -> Alert:
        assert self.baseline is not None and self.chart is not None
        rate = self.chart.excursion_rate()
        now = rate if rate is not None else self.display
        return Alert(
            id=f"{self.name}:up:{obs.part_id}",
            metric=self.name,
            detector="bernoulli",
            direction="up",
            severity=self.metric.severity,
            value=now,
            baseline=self.baseline.mean,
            started_part=started[0],
            started_time=started[1],
            raised_part=obs.part_id,
            raised_time=obs.time,
            message=(
                f"{self.metric.label} up from {percent(self.baseline.mean)} to {percent(now)} "
                f"{over_parts(parts)}"
            ),
        )

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "rate",
            "state": self.status(),
            "value": round(self.display, 6) if self.seen else None,
            "baseline": None if self.baseline is None else self.baseline.mean,
        }
        if self.chart is not None:
            out |= {
                "detector": "bernoulli",
                "statistic": round(self.chart.statistic(), 4),
                "limit": round(self.chart.limit, 4),
                "arl0": round(self.chart.design.arl0),
            }
        elif self.baseline is None:
            out["warmup"] = {"parts": self.parts, "of": self.warmup_parts}
        return out

    def state(self) -> dict[str, Any]:
        return {**self._state_common(), "warmup": {"parts": self.parts, "events": self.events}}

    def restore(self, state: dict[str, Any]) -> None:
        warmup = state["warmup"]
        self.parts, self.events = int(warmup["parts"]), int(warmup["events"])
        if state.get("baseline") is not None:
            self.set_baseline(Baseline.from_dict(state["baseline"]))
        self._restore_common(state)


class MeanTracker(_Tracker):
    """A mean on a CUSUM or EWMA chart of standardised values, winsorised at ±4 σ (Hawkins,
    "Robustification of cumulative sum charts by winsorization", JQT 25(4), 1993): on normal
    data that changes nothing that matters (P(|z| > 4) = 6·10⁻⁵), but one part scored near
    zero (a log-scale score of −10 σ) can no longer raise an alert on its own."""

    def __init__(self, metric: MeanMetric, config: MonitorConfig) -> None:
        super().__init__(metric.name, config)
        own: MeanMetricConfig = getattr(config.metrics, metric.name)
        self.metric = metric
        self.read = metric.read
        self.log = metric.log
        self.angle = metric.angle
        self.kind = own.detector or config.detector
        self._k = config.cusum.k if own.k is None else own.k
        self._h = config.cusum.h if own.h is None else own.h
        self._lambda = config.ewma.lambda_ if own.lambda_ is None else own.lambda_
        self._L = config.ewma.L if own.L is None else own.L
        self._limits = own.limits or config.ewma.limits
        self.warmup = MeanWarmup(angle=metric.angle)
        self.chart: TabularCusum | Ewma | None = None
        self._mean = 0.0
        self._std = 1.0

    def _chart(self) -> TabularCusum | Ewma:
        if self.kind == "ewma":
            return Ewma(self._lambda, self._L, self._limits)
        return TabularCusum(self._k, self._h)

    def observe(self, obs: PartObservation) -> AlertEvent | None:
        raw = self.read(obs)
        if raw is None:
            return None
        self.last = raw
        self.display = (
            raw if not self.seen else self.display + _DISPLAY_WEIGHT * (raw - self.display)
        )
        self.seen += 1
        x = chart_value(raw, self.log)
        chart = self.chart
        if chart is None:
            self.warmup.add(x)
            if self.warmup.count >= self.warmup_parts:
                self.set_baseline(self.warmup.baseline())
            return None
        deviation = wrap_degrees(x - self._mean) if self.angle else x - self._mean
        z = deviation / self._std
        # Winsorised (Hawkins 1993): one wild part moves the chart by at most WINSOR σ, so a
        # persistent shift raises the alarm, a single outlier does not.
        chart.update(WINSOR if z > WINSOR else (-WINSOR if z < -WINSOR else z))
        if chart.n_upper == 1:  # a sum just left zero: a possible change point
            self.start[ABOVE] = (obs.part_id, obs.time)
        if chart.n_lower == 1:
            self.start[BELOW] = (obs.part_id, obs.time)
        if self.gate.active is None:
            side = chart.direction()
            if side == IN_CONTROL:
                return None
            return self._raise(side, obs, chart.excursion(side))
        return self._settle(obs, chart.settled(self.clear_fraction))

    def set_baseline(self, baseline: Baseline) -> None:
        self.baseline = baseline
        self._mean, self._std = baseline.mean, baseline.std
        self.chart = self._chart()
        self.detector = self.chart
        log.info(
            "monitor: %s baseline %s ± %s from %d %s (chart %s)",
            self.name,
            number(self.raw(baseline.mean), self.metric.unit),
            f"{100 * math.expm1(baseline.std):.2g} %" if self.log else number(baseline.std),
            baseline.parts,
            "parts" if baseline.source == "warmup" else "validation images (manifest)",
            self.kind,
        )

    def raw(self, value: float) -> float:
        """A chart-scale value in the metric's own units."""
        if self.log:
            return math.exp(value)
        return wrap_degrees(value) if self.angle else value

    def _alert(
        self, side: int, obs: PartObservation, started: tuple[int, str | None], parts: int
    ) -> Alert:
        assert self.baseline is not None and self.chart is not None
        shift = self.chart.shift(side)
        usual = self.raw(self._mean)
        now = self.raw(self._mean + shift * self._std)
        if self.log:
            change = f"{_WORDS[side]} {abs(100 * math.expm1(shift * self._std)):.3g} %"
        else:
            change = f"{_WORDS[side]} {number(abs(shift * self._std), self.metric.unit)}"
        unit = "" if self.log else self.metric.unit
        return Alert(
            id=f"{self.name}:{_direction(side)}:{obs.part_id}",
            metric=self.name,
            detector=self.kind,
            direction=_direction(side),
            severity=self.metric.severity,
            value=now,
            baseline=usual,
            started_part=started[0],
            started_time=started[1],
            raised_part=obs.part_id,
            raised_time=obs.time,
            message=(
                f"{self.metric.label} {change} {over_parts(parts)} "
                f"({number(now, unit)}, usually {number(usual, unit)})"
            ),
        )

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "mean",
            "state": self.status(),
            "value": float(f"{self.display:.6g}") if self.seen else None,
            "last": None if self.last is None else float(f"{self.last:.6g}"),
            "baseline": None if self.baseline is None else float(f"{self.raw(self._mean):.6g}"),
        }
        if self.detector is not None:
            out |= {
                "detector": self.kind,
                "statistic": round(self.detector.statistic(), 4),
                "limit": round(self.detector.limit, 4),
            }
        else:
            out["warmup"] = {"parts": self.warmup.count, "of": self.warmup_parts}
        return out

    def state(self) -> dict[str, Any]:
        return {**self._state_common(), "warmup": self.warmup.state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.warmup.restore(state["warmup"])
        if state.get("baseline") is not None:
            self.set_baseline(Baseline.from_dict(state["baseline"]))
        self._restore_common(state)


class LevelTracker:
    """A level against fixed limits: raised above `high`, cleared at or below `low`."""

    def __init__(self, metric: LevelMetric, config: MonitorConfig, high: float, low: float) -> None:
        self.metric = metric
        self.name = metric.name
        self.high = high
        self.low = low
        self.gate = AlertGate(1, config.min_interval_s)
        self.value: float | None = None
        self.since: tuple[int | None, str | None] | None = None  # when it went above `low`

    def check(
        self,
        value: float | None,
        describe: str,
        *,
        part_id: int | None,
        time: str | None,
        now_s: float | None,
    ) -> AlertEvent | None:
        """The level now; `describe` is the sentence an alert raised now would carry."""
        if value is None:
            return None
        self.value = value
        if value <= self.low:
            self.since = None
        elif self.since is None:
            self.since = (part_id, time)
        if self.gate.active is None:
            if value <= self.high or not self.gate.may_raise(now_s):
                return None
            since = self.since or (part_id, time)
            alert = Alert(
                # the last part seen and the sample's time: a level can rise twice between parts
                id=f"{self.name}:up:{part_id}" + (f"@{time}" if time else ""),
                metric=self.name,
                detector="limit",
                direction="up",
                severity=self.metric.severity,
                value=value,
                baseline=self.high,
                started_part=since[0],
                started_time=since[1],
                raised_part=part_id,
                raised_time=time,
                message=describe,
            )
            return self.gate.raised(alert, now_s)
        if self.gate.in_control(value <= self.low):
            return self.gate.cleared(part_id, time, back_in_control(self.gate.active))
        return None

    def snapshot(self) -> dict[str, Any]:
        return {
            "kind": "level",
            "state": "alert" if self.gate.active is not None else "in_control",
            "value": None if self.value is None else float(f"{self.value:.6g}"),
            "high": float(f"{self.high:.6g}"),
            "low": float(f"{self.low:.6g}"),
        }

    def state(self) -> dict[str, Any]:
        return {"gate": self.gate.state()}

    def restore(self, state: dict[str, Any]) -> None:
        self.gate.restore(state["gate"])
