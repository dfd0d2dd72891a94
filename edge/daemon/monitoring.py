"""The metrics monitor's worker: the daemon's side of edge/monitor.

The output stage hands every result payload to `offer` (a put that never waits: when the
monitor is behind, the result is dropped from monitoring, counted and logged, and the reject
path never notices). This worker feeds them to the Monitor in part-id order, samples the
station once a second (outbox depth, camera state), and for every alert event:

- logs it (journald: WARNING for a raise, INFO for a clear),
- publishes it durably at QoS 1 on `alert` (through the outbox: raised while the broker is
  down, it arrives when the broker is back, in order),
- publishes the set of active alerts, retained, durably at QoS 1 on `alert/active`, so that a
  SCADA client connecting later sees what is active now.

The monitor's state (baselines, charts, active alerts) is saved to config.monitor.state_file
every `snapshot_s` and at stop, and restored at start: a daemon restarted mid-alert publishes
the active set again at once. A state saved for another engine is not restored (baselines start
afresh) and its active alerts are withdrawn with a clear each. The same happens at the first
result judged by another engine after a hot swap (edge.daemon.swap).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge.config import Config
from edge.config.monitor import MonitorConfig
from edge.daemon.payload import utc_iso
from edge.daemon.throttle import LogThrottle
from edge.daemon.worker import FatalHandler, Worker
from edge.errors import PartSightError
from edge.monitor import (
    AlertEvent,
    Monitor,
    ObservationError,
    PartObservation,
    StationSample,
    active_payload,
    alert_payload,
    engine_key,
    load_state,
    save_state,
)
from edge.monitor.alerts import Alert
from hw.camera.base import Camera
from hw.camera.clock import Clock

log = logging.getLogger(__name__)

ALERT_TOPIC = "alert"
ACTIVE_TOPIC = "alert/active"
SAMPLE_S = 1.0  # how often the station's state is sampled
_GET_TIMEOUT_S = 0.1

# publish(topic suffix, payload, retain): durable at QoS 1; raises PartSightError (OutboxError)
Publish = Callable[[str, dict[str, Any], bool], object]


def monitored_engine(inspector: Any) -> tuple[str | None, Mapping[str, Any]]:
    """The key the monitor's state is kept under (name, version and model hash of the engine)
    and the engine's validation figures; (None, {}) for an inspector without a bundle."""
    manifest = getattr(getattr(inspector, "bundle", None), "manifest", None)
    if manifest is None:
        return None, {}
    model = next((f.sha256 for f in manifest.files if f.path == manifest.model.file), None)
    return engine_key(manifest.name, manifest.version, model), dict(manifest.validation)


def create_monitor(config: Config, inspector: Any) -> Monitor:
    """The Monitor for this station and its engine (whether it runs is the caller's call)."""
    key, figures = monitored_engine(inspector)
    return Monitor(
        config.monitor, engine=key, figures=figures, deadline_ms=config.pipeline.deadline_ms
    )


def station_sample(clock: Clock, camera: Camera, outbox: Any | None) -> StationSample:
    """The station's state now: the outbox's depth (None without MQTT) and the camera's."""
    return StationSample(
        time_s=clock.monotonic_ns() / 1e9,
        time=utc_iso(clock.time()),
        outbox_depth=None if outbox is None else len(outbox),
        camera_connected=camera.connected,
        camera_outages=camera.stats.disconnects,
    )


def measures_frames(config: MonitorConfig) -> bool:
    """Whether the inspection stage should measure every frame (any frame metric is on)."""
    metrics = config.metrics
    wanted = (metrics.brightness, metrics.contrast, metrics.focus)
    return config.enabled and any(m.enabled for m in wanted)


class MonitorWorker(Worker):
    def __init__(
        self,
        *,
        config: MonitorConfig,
        monitor: Monitor,
        station: str,
        publish: Publish | None,
        sample: Callable[[], StationSample],
        upstream_done: Callable[[], bool],
        stop: threading.Event,
        on_fatal: FatalHandler,
    ) -> None:
        super().__init__("monitor", stop, on_fatal)
        self.config = config
        self.monitor = monitor
        self.station = station
        self._publish = publish
        self._sample = sample
        self._upstream_done = upstream_done
        self._queue: queue.Queue[Mapping[str, Any]] = queue.Queue(config.queue)
        self._throttle = LogThrottle(60.0)
        self.dropped = 0  # results not monitored because the queue was full
        self.unreadable = 0
        self.publish_failures = 0

    # -- the output stage's side ----------------------------------------------------------

    def offer(self, payload: Mapping[str, Any]) -> None:
        """One result, from the output stage. Never waits."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.dropped += 1
            if (held := self._throttle.allow("full")) is not None:
                log.warning(
                    "monitor is behind: part %s not monitored (%d dropped so far, %d not logged)",
                    payload.get("part_id"),
                    self.dropped,
                    held,
                )

    # -- start, loop, stop ------------------------------------------------------------------

    def start(self) -> None:
        """Restore the saved state and publish the active alerts, then start the thread."""
        state = load_state(self.config.state_file)
        if state is not None:
            for event in self.monitor.restore(state):  # the old engine's alerts, withdrawn
                self._send(ALERT_TOPIC, alert_payload(event, self.station), retain=False)
            active = self.monitor.active()
            if active:
                log.warning(
                    "monitor: %d alert(s) still active from before the restart: %s",
                    len(active),
                    "; ".join(a.message for a in active),
                )
        self._publish_active(self.monitor.active())
        super().start()

    def loop(self) -> None:
        next_sample = next_save = time.monotonic()
        while True:
            try:
                payload = self._queue.get(timeout=_GET_TIMEOUT_S)
            except queue.Empty:
                payload = None
            if payload is not None:
                self._observe(payload)
            now = time.monotonic()
            if now >= next_sample and not self.stop_event.is_set():
                next_sample = now + SAMPLE_S
                self._emit(self.monitor.sample(self._sample()))
            if now >= next_save:
                next_save = now + self.config.snapshot_s
                self.save()
            if self.stop_event.is_set() and self._upstream_done() and self._queue.empty():
                break
        self.save()

    def _observe(self, payload: Mapping[str, Any]) -> None:
        engine = payload.get("engine")
        if isinstance(engine, Mapping):  # after a hot swap: the first part the new engine judged
            key = engine_key(engine["name"], engine["version"], engine.get("model_sha256"))
            if key != self.monitor.engine:
                log.info("monitor: engine %s from part %s on", key, payload.get("part_id"))
                self._emit(self.monitor.reset(key))
        try:
            observation = PartObservation.from_result(payload)
        except ObservationError as exc:
            self.unreadable += 1
            if self._throttle.allow("unreadable") is not None:
                log.error("monitor: part %s: %s", payload.get("part_id"), exc)
            return
        events = self.monitor.observe(observation)
        if events:
            self._emit(events)

    def save(self) -> None:
        try:
            save_state(self.config.state_file, self.monitor.state())
        except OSError as exc:
            if self._throttle.allow("save") is not None:
                log.error("monitor: cannot save %s: %s", self.config.state_file, exc)

    # -- publishing ---------------------------------------------------------------------------

    def _emit(self, events: list[AlertEvent] | tuple[AlertEvent, ...]) -> None:
        if not events:
            return
        for event in events:
            self._send(ALERT_TOPIC, alert_payload(event, self.station), retain=False)
        self._publish_active(self.monitor.active())
        self.save()  # a raise or a clear survives a crash right after it

    def _publish_active(self, alerts: list[Alert]) -> None:
        payload = active_payload(alerts, self.station, utc_iso(time.time()))
        self._send(ACTIVE_TOPIC, payload, retain=True)

    def _send(self, topic: str, payload: dict[str, Any], retain: bool) -> None:
        if self._publish is None:
            return
        try:
            self._publish(topic, payload, retain)
        except PartSightError as exc:  # OutboxError: the disk refused it
            self.publish_failures += 1
            log.error("monitor: %s not published: %s", topic, exc)

    def counters(self) -> dict[str, int]:
        return {
            "dropped": self.dropped,
            "unreadable": self.unreadable,
            "publish_failures": self.publish_failures,
            "queued": self._queue.qsize(),
        }
