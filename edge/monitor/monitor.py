"""The monitor: every metric's tracker, fed one part at a time and sampled now and then, with
the alerts they raise and clear.

    monitor = Monitor(config.monitor, engine="tiny@0.1.0#…", figures=manifest.validation,
                      deadline_ms=500)
    events = monitor.observe(PartObservation.from_result(payload))   # per part, in id order
    events += monitor.sample(StationSample(...))                       # e.g. once a second
    monitor.active(); monitor.snapshot(); monitor.state() / restore(...)

Per part the cost is O(1) and small (about 20 µs with every metric on: bench/bench_monitor.py);
nothing grows with the number of parts. Thread-safe: one lock around everything.

The state (baselines, warm-ups, charts, active alerts) is keyed by the engine, so a restart
with the same engine picks up where it left off and a different engine starts afresh
(`restore` returns the clears of whatever the old engine's state had active).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.config.monitor import LevelMetricConfig, MonitorConfig
from edge.monitor.alerts import Alert, AlertEvent, AlertGate, number
from edge.monitor.baseline import manifest_baseline
from edge.monitor.metrics import LEVELS, MEANS, RATES
from edge.monitor.observation import PartObservation
from edge.monitor.streaming import WindowedHistogram
from edge.monitor.trackers import LevelTracker, MeanTracker, RateTracker

log = logging.getLogger(__name__)

STATE_VERSION = 1
_QUANTILE_EVERY = 32  # parts between two looks at the recent p99s (O(bins) each)
_WINDOW = 500  # parts: the recent quantiles are over the last this many values
_MIN_FOR_P99 = 100  # values a recent p99 needs before it is compared with a limit
_NO_EVENTS: tuple[AlertEvent, ...] = ()


@dataclass(frozen=True)
class StationSample:
    """The station's state at one moment, for the level metrics the parts do not carry."""

    time_s: float  # the station's monotonic clock, seconds (the clock of the parts' triggers)
    time: str | None = None  # wall clock, ISO 8601 UTC
    outbox_depth: int | None = None  # MQTT messages waiting; None without MQTT
    camera_connected: bool | None = None
    camera_outages: int | None = None  # outages so far (the camera's `disconnects` counter)


class Monitor:
    def __init__(
        self,
        config: MonitorConfig,
        *,
        engine: str | None = None,
        figures: Mapping[str, Any] | None = None,
        deadline_ms: float | None = None,
    ) -> None:
        """`engine` keys the persisted state; `figures` are the engine manifest's validation
        figures (used with config.baseline = "manifest"); `deadline_ms` is what latency_p99
        is measured against (without it that metric is off)."""
        self.config = config
        self.engine = engine
        self.deadline_ms = deadline_ms
        self._figures = dict(figures or {})
        self._lock = threading.Lock()
        self._build()

    def _build(self) -> None:
        metrics = self.config.metrics
        self.rates = [RateTracker(m, self.config) for m in RATES if _enabled(metrics, m.name)]
        self.means = [MeanTracker(m, self.config) for m in MEANS if _enabled(metrics, m.name)]
        self.levels: dict[str, LevelTracker] = {}
        for metric in LEVELS:
            own: LevelMetricConfig = getattr(metrics, metric.name)
            if not own.enabled or (metric.name == "latency_p99" and self.deadline_ms is None):
                continue
            high = metric.high if own.high is None else own.high
            low = metric.low if own.low is None else own.low
            self.levels[metric.name] = LevelTracker(metric, self.config, high, low)
        self._level_limits = {
            name: (tracker.high, tracker.low) for name, tracker in self.levels.items()
        }
        if self.config.baseline == "manifest":
            self._baselines_from_manifest()
        self.parts = 0
        self.raised = 0
        self.cleared = 0
        self._latency = WindowedHistogram(0.1, 1e6, bins=240, window=_WINDOW, log=True)
        self._scores: WindowedHistogram | None = None  # made at the first OK score's threshold
        self._threshold: float | None = None
        self._score_base: float | None = None  # the score p99 at the end of the warm-up
        self._ok_scores = 0
        self._last_part_s: float | None = None
        self._last_part: tuple[int | None, str | None] = (None, None)  # id and time, for samples
        self._gap_s: float | None = None  # EWMA of the gaps between triggers
        self._max_gap_s = 0.0
        self._idle_since_s: float | None = None
        self._lost_since_s: float | None = None
        self._outages_seen: int | None = None
        window = getattr(self.config.metrics.camera_reconnects, "window_s", 600.0)
        self._outage_window_s = float(window)
        high = self._level_limits.get("camera_reconnects", (3.0, 0.0))[0]
        self._outages: deque[float] = deque(maxlen=int(high) + 1)

    def _baselines_from_manifest(self) -> None:
        found = []
        for tracker in self.means:
            figure = tracker.metric.figure
            if figure is None:
                continue
            baseline = manifest_baseline(
                self._figures, figure, tracker.metric.log, tracker.metric.angle
            )
            if baseline is not None:
                tracker.set_baseline(baseline)
                found.append(tracker.name)
        missing = [t.name for t in self.means if t.name not in found]
        if missing:
            log.info(
                "monitor: the engine's manifest has no baseline for %s: learnt over the "
                "first %d parts instead",
                ", ".join(missing),
                self.config.warmup_parts,
            )

    # -- input ------------------------------------------------------------------------------

    def observe(self, obs: PartObservation) -> tuple[AlertEvent, ...] | list[AlertEvent]:
        """One part, in part-id order. Returns the alert events it caused (usually none)."""
        events: list[AlertEvent] | None = None
        with self._lock:
            self.parts += 1
            self._last_part = (obs.part_id, obs.time)
            for rate in self.rates:
                event = rate.observe(obs)
                if event is not None:
                    events = _add(events, event)
            for mean in self.means:
                event = mean.observe(obs)
                if event is not None:
                    events = _add(events, event)
            event = self._times(obs)
            if event is not None:
                events = _add(events, event)
            if obs.latency_ms is not None:
                self._latency.add(obs.latency_ms)
            if obs.score is not None and obs.verdict == "OK" and not obs.reason:
                self._score(obs.score, obs.threshold)
            if self.parts % _QUANTILE_EVERY == 0:
                for event in self._quantiles(obs.part_id, obs.time, obs.time_s):
                    events = _add(events, event)
            if events is None:
                return _NO_EVENTS
            self._count(events)
            return events

    def sample(self, sample: StationSample) -> list[AlertEvent]:
        """The station's state now (outbox, camera, time since the last part). An alert raised
        here names the last part seen, as the part where the station stood."""
        events: list[AlertEvent] = []
        with self._lock:
            now = sample.time_s
            part_id = self._last_part[0]

            def check(name: str, value: float | None, describe: str) -> None:
                tracker = self.levels.get(name)
                if tracker is not None and value is not None:
                    event = tracker.check(
                        value, describe, part_id=part_id, time=sample.time, now_s=now
                    )
                    if event is not None:
                        events.append(event)

            if sample.outbox_depth is not None:
                high = self._level_limits.get("outbox_depth", (0, 0))[0]
                check(
                    "outbox_depth",
                    float(sample.outbox_depth),
                    f"MQTT outbox holds {sample.outbox_depth} messages (more than {high:.0f}): "
                    "results are not reaching the broker",
                )
            if sample.camera_connected is not None:
                if sample.camera_connected:
                    self._lost_since_s = None
                elif self._lost_since_s is None:
                    self._lost_since_s = now
                lost = 0.0 if self._lost_since_s is None else now - self._lost_since_s
                check("camera_lost", lost, f"camera disconnected for {lost:.0f} s")
            if sample.camera_outages is not None:
                if self._outages_seen is not None:
                    for _ in range(max(0, min(sample.camera_outages - self._outages_seen, 100))):
                        self._outages.append(now)
                self._outages_seen = sample.camera_outages
                recent = sum(1 for t in self._outages if now - t <= self._outage_window_s)
                check(
                    "camera_reconnects",
                    float(recent),
                    f"camera lost {recent} times in the last {self._outage_window_s:.0f} s",
                )
            if self._idle_since_s is None:
                self._idle_since_s = now
            last = self._last_part_s if self._last_part_s is not None else self._idle_since_s
            idle = max(0.0, now - last)
            if sample.camera_connected is not False:
                check(
                    "line_idle",
                    idle,
                    f"no part for {idle:.0f} s with the camera connected: the line has stopped",
                )
            events.extend(self._quantiles(part_id, sample.time, now))
            self._count(events)
        return events

    def _times(self, obs: PartObservation) -> AlertEvent | None:
        """Gaps between triggers; a part arriving ends an idle line."""
        if obs.time_s is None:
            return None
        if self._last_part_s is not None:
            gap = obs.time_s - self._last_part_s
            if gap >= 0:
                self._gap_s = (
                    gap if self._gap_s is None else self._gap_s + 0.02 * (gap - self._gap_s)
                )
                self._max_gap_s = max(self._max_gap_s, gap)
        self._last_part_s = obs.time_s
        idle = self.levels.get("line_idle")
        if idle is None or idle.gate.active is None:
            return None
        return idle.check(0.0, "", part_id=obs.part_id, time=obs.time, now_s=obs.time_s)

    def _score(self, score: float, threshold: float | None) -> None:
        if self._scores is None:
            if threshold is None or not threshold > 0:
                return
            self._threshold = threshold
            self._scores = WindowedHistogram(0.0, threshold, bins=400, window=_WINDOW)
        self._scores.add(score)
        self._ok_scores += 1
        if self._score_base is None and self._ok_scores >= self.config.warmup_parts:
            self._score_base = self._scores.quantile(0.99)
            tracker = self.levels.get("score_p99")
            if tracker is not None and self._score_base is not None:
                high, low = self._level_limits["score_p99"]
                room = self._threshold - self._score_base  # type: ignore[operator]
                tracker.high = self._score_base + high * room
                tracker.low = self._score_base + low * room
                log.info(
                    "monitor: score_p99 baseline %s (threshold %s)",
                    number(self._score_base),
                    number(self._threshold),  # type: ignore[arg-type]
                )

    def _quantiles(
        self, part_id: int | None, time: str | None, now_s: float | None
    ) -> list[AlertEvent]:
        events = []
        latency = self.levels.get("latency_p99")
        if (
            latency is not None
            and self.deadline_ms is not None
            and self._latency.seen >= _MIN_FOR_P99
        ):
            p99 = self._latency.quantile(0.99)
            if p99 is not None:
                high, low = self._level_limits["latency_p99"]
                latency.high, latency.low = high * self.deadline_ms, low * self.deadline_ms
                event = latency.check(
                    p99,
                    f"latency p99 {p99:.0f} ms, {100 * p99 / self.deadline_ms:.0f} % of the "
                    f"{self.deadline_ms:.0f} ms deadline",
                    part_id=part_id,
                    time=time,
                    now_s=now_s,
                )
                if event is not None:
                    events.append(event)
        scores = self.levels.get("score_p99")
        if (
            scores is not None
            and self._score_base is not None
            and self._scores is not None
            and self._scores.seen >= _MIN_FOR_P99
        ):
            p99 = self._scores.quantile(0.99)
            if p99 is not None:
                event = scores.check(
                    p99,
                    f"OK parts' score p99 {number(p99)}, up from {number(self._score_base)} "
                    f"towards the threshold {number(self._threshold or math.nan)}",
                    part_id=part_id,
                    time=time,
                    now_s=now_s,
                )
                if event is not None:
                    events.append(event)
        return events

    def _count(self, events: list[AlertEvent]) -> None:
        for event in events:
            if event.kind == "raised":
                self.raised += 1
                log.warning("%s", event.log_line())
            else:
                self.cleared += 1
                log.info("%s", event.log_line())

    # -- output -----------------------------------------------------------------------------

    def _charts(self) -> list[RateTracker | MeanTracker]:
        return [*self.rates, *self.means]

    def _gates(self) -> list[AlertGate]:
        return [t.gate for t in self._charts()] + [t.gate for t in self.levels.values()]

    def active(self) -> list[Alert]:
        """The alerts active now, oldest raise first."""
        with self._lock:
            alerts = [g.active for g in self._gates() if g.active is not None]
        return sorted(alerts, key=lambda a: (a.raised_time or "", a.raised_part or 0, a.id))

    def readings(self) -> dict[str, tuple[float | None, float | None, float | None]]:
        """(latest value, chart statistic, chart limit) of every metric, for plotting a replay;
        for a level (value, high, low). None where there is nothing yet."""
        with self._lock:
            out: dict[str, tuple[float | None, float | None, float | None]] = {}
            for tracker in self._charts():
                chart = tracker.detector
                out[tracker.name] = (
                    tracker.last,
                    None if chart is None else chart.statistic(),
                    None if chart is None else chart.limit,
                )
            for name, level in self.levels.items():
                out[name] = (level.value, level.high, level.low)
            return out

    def snapshot(self) -> dict[str, Any]:
        """Current values, baselines and chart states, for the `metrics` topic."""
        with self._lock:
            metrics: dict[str, Any] = {}
            for tracker in self._charts():
                metrics[tracker.name] = tracker.snapshot()
            for name, level in self.levels.items():
                metrics[name] = level.snapshot()
            if "score_p99" in metrics:
                metrics["score_p99"]["baseline"] = self._score_base
            return {
                "engine": self.engine,
                "parts": self.parts,
                "parts_per_s": None if not self._gap_s else round(1.0 / self._gap_s, 3),
                "gap_s": {
                    "mean": None if self._gap_s is None else round(self._gap_s, 4),
                    "max": round(self._max_gap_s, 4),
                },
                "latency_ms_p99": self._latency.quantile(0.99),
                # every metric that has had a value has its baseline (an engine that does
                # not register never feeds the pose, and that is no warm-up left to do)
                "warmup_done": self.parts > 0
                and all(t.baseline is not None or t.disabled for t in self._charts() if t.seen),
                "active": [g.active.id for g in self._gates() if g.active is not None],
                "raised": self.raised,
                "cleared": self.cleared,
                "held": sum(g.held for g in self._gates()),  # parts signalling, rate-limited
                "metrics": metrics,
            }

    # -- persistence --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "version": STATE_VERSION,
                "engine": self.engine,
                "parts": self.parts,
                "trackers": {t.name: t.state() for t in self._charts()},
                "levels": {name: t.state() for name, t in self.levels.items()},
                "score_p99_baseline": self._score_base,
                "ok_scores": self._ok_scores,
            }

    def restore(self, state: Mapping[str, Any]) -> list[AlertEvent]:
        """Take back a saved state. For another engine (or an unreadable state) nothing is
        taken back, and the clears of the alerts that state had active are returned, so that
        whoever publishes them withdraws them."""
        if state.get("version") != STATE_VERSION or state.get("engine") != self.engine:
            withdrawn = _withdraw(state, f"baselines reset: engine {self.engine}")
            log.info(
                "monitor: saved state is for engine %s, now %s: baselines start afresh",
                state.get("engine"),
                self.engine,
            )
            return withdrawn
        with self._lock:
            self.parts = int(state.get("parts", 0))
            trackers = state.get("trackers", {})
            for tracker in self._charts():
                if tracker.name in trackers:
                    _restore(tracker, trackers[tracker.name])
            levels = state.get("levels", {})
            for name, level in self.levels.items():
                if name in levels:
                    _restore(level, levels[name])
            self._ok_scores = int(state.get("ok_scores", 0))
            base = state.get("score_p99_baseline")
            self._score_base = None if base is None else float(base)
        return []

    def reset(self, engine: str | None) -> list[AlertEvent]:
        """A new engine: every baseline starts afresh. Returns the clears of the alerts that
        were active (withdrawn: they were about the old engine's parts)."""
        events = _withdraw(self.state(), f"baselines reset: engine {engine}")
        with self._lock:
            self.engine = engine
            self._build()
        return events


def _enabled(metrics: Any, name: str) -> bool:
    return bool(getattr(metrics, name).enabled)


def _add(events: list[AlertEvent] | None, event: AlertEvent) -> list[AlertEvent]:
    if events is None:
        return [event]
    events.append(event)
    return events


def _restore(tracker: RateTracker | MeanTracker | LevelTracker, state: Any) -> None:
    try:
        tracker.restore(state)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        log.warning("monitor: saved state of %s unusable (%s): it starts afresh", tracker.name, exc)


def _withdraw(state: Mapping[str, Any], why: str) -> list[AlertEvent]:
    events = []
    groups = [state.get("trackers") or {}, state.get("levels") or {}]
    for group in groups:
        if not isinstance(group, Mapping):
            continue
        for saved in group.values():
            try:
                active = saved["gate"]["active"]
                if active is None:
                    continue
                alert = Alert.from_dict(active)
            except (KeyError, TypeError, ValueError):
                continue
            events.append(
                AlertEvent("cleared", alert, None, None, f"{alert.metric} alert withdrawn: {why}")
            )
    return events
