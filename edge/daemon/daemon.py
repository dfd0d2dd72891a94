"""The line daemon: the pipeline's workers, their start-up and shutdown, and the main loop
that talks to systemd and publishes the station's state.

    daemon = Daemon(load_config(path))      # builds what is not passed in
    exit_code = daemon.run_forever()        # READY ... SIGTERM ... STOPPING; 0, or 1 if fatal

Start-up is one ordered list of steps (state, part ids, camera, reject output, MQTT, the metrics
monitor, then the workers from the last stage to the first, so nothing is produced before its
consumer runs, with the engine swapper (SIGHUP, `cmd/engine/activate`; edge.daemon.swap) before
the acquisition);
shutdown runs it in reverse with a shared time budget: the acquisition stops first, the parts in
flight finish, the outbox is flushed, the reject pulses already scheduled fire, the camera and
files are closed.

The main loop also watches the health of the camera, the reject output and the MQTT link
(health.py): a change goes to systemd's STATUS line at once, to the retained `status` topic and,
as a message, to `alert`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from edge.config import Config
from edge.daemon.acquisition import AcquisitionWorker
from edge.daemon.build import acquisition_settings, open_publisher
from edge.daemon.counters import PipelineCounters
from edge.daemon.engines import ActiveEngine, EngineSlot, EngineSource, PartInspector
from edge.daemon.health import Change, StationHealth
from edge.daemon.inspection import InspectionWorker
from edge.daemon.messages import Heartbeat, Outcome, Part
from edge.daemon.monitoring import (
    MonitorWorker,
    create_monitor,
    measures_frames,
    monitored_engine,
    station_sample,
)
from edge.daemon.output import OutputWorker
from edge.daemon.payload import engine_payload, health_alert
from edge.daemon.queues import StageQueue
from edge.daemon.reject import RejectOutput, create_reject_output
from edge.daemon.report import RateMeter, metrics_payload, status_line
from edge.daemon.swap import ACTIVATE, EngineSwapper
from edge.daemon.tracker import InFlight
from edge.daemon.verdict import EngineInfo
from edge.errors import PartSightError
from edge.part_ids import PartIdStore
from edge.systemd import Notifier, WatchdogGate
from hw.camera import create_camera
from hw.camera.base import Camera
from hw.camera.clock import Clock, SystemClock

if TYPE_CHECKING:
    from edge.mqtt import MqttPublisher, Outbox

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FATAL = 0, 1

STOP_TIMEOUT_S = 10.0  # the whole shutdown; systemd's TimeoutStopSec= is well above it
FLUSH_TIMEOUT_S = 3.0  # of that, at most this long for the outbox to drain to the broker
_TICK_S = 0.1  # the main loop's period: watchdog, STATUS and metrics are checked this often
_SWAPPER_JOIN_S = 1.0  # how long a stop waits for an engine load in progress


@dataclass(frozen=True)
class _Step:
    name: str
    start: Callable[[], None]
    stop: Callable[[float], None]


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        camera: Camera | None = None,
        inspector: PartInspector | None = None,
        publisher: MqttPublisher | None = None,
        part_ids: PartIdStore | None = None,
        reject: RejectOutput | None = None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        status_interval_s: float = 5.0,
        metrics_interval_s: float | None = None,
    ) -> None:
        """Components not passed in are built from `config`: the engine is verified and
        loaded and its golden samples run here (a PartSightError says why it cannot be), the
        camera is created but not opened. Files, connections and threads are opened by
        start()."""
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.source = EngineSource(config)
        first = (
            self.source.open()
            if inspector is None
            else ActiveEngine(inspector, EngineInfo.of(inspector.bundle, inspector.backend))
        )
        self.engines = EngineSlot(first)
        self.camera: Camera = camera or create_camera(config.camera.to_settings(), clock=self.clock)
        self.reject: RejectOutput = reject or create_reject_output(
            config.reject, camera=self._pylon_camera, latency_ms=config.pipeline.deadline_ms
        )
        self.notifier = notifier or Notifier()
        self.publisher: MqttPublisher | None = publisher
        self.part_ids: PartIdStore | None = part_ids
        self._own_publisher = publisher is None and config.mqtt.enabled
        self._own_part_ids = part_ids is None
        self._outbox: Outbox | None = None
        self.status_interval_s = status_interval_s
        self.metrics_interval_s = metrics_interval_s or config.monitor.snapshot_s

        pipeline = config.pipeline
        self.counters = PipelineCounters()
        self.in_flight = InFlight()
        self.frames: StageQueue[Part | Heartbeat] = StageQueue(pipeline.frame_queue)
        # Registration runs inside the engine's inspect(), so one queue leads to it;
        # pipeline.inference_queue sizes nothing until registration is a stage of its own.
        self.outputs: StageQueue[Outcome | Heartbeat] = StageQueue(pipeline.output_queue)
        self.watchdog = WatchdogGate(self.notifier, feed_fraction=pipeline.watchdog.feed_fraction)
        # The MQTT link joins when the publisher exists (start-up).
        self.health = StationHealth({"camera": self.camera.health, "reject": self.reject.health})
        self._stop = threading.Event()  # the workers' one stop event
        self._shutdown = threading.Event()  # asks the main loop to stop
        self._reload = threading.Event()  # asks the main loop for an engine reload (SIGHUP)
        self._stop_reason = ""
        self._fatal: str | None = None
        self._lock = threading.Lock()
        self._started: list[_Step] = []
        self._stopped = False
        self.acquisition: AcquisitionWorker | None = None
        self.inspection: InspectionWorker | None = None
        self.output: OutputWorker | None = None
        self.monitor: MonitorWorker | None = None
        self.swapper = EngineSwapper(
            slot=self.engines,
            source=self.source,
            clock=self.clock,
            stop=self._stop,
            on_fatal=self._on_fatal,
            announce=self._announce_engine,
            respond=self._respond,
        )
        self._rate = RateMeter()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the start-up list in order; on a failure, undo what was started and raise."""
        for step in self._steps():
            try:
                step.start()
            except BaseException:
                log.error("start-up failed at %s", step.name)
                self._unwind(STOP_TIMEOUT_S)
                raise
            self._started.append(step)
        log.info("pipeline running: %s", self.config.summary())

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop in reverse start-up order within `timeout_s` overall. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        self._unwind(timeout_s)
        snap = self.counters.snapshot()
        overall = snap.parts / snap.uptime_s if snap.uptime_s > 0 else 0.0
        # Every component is closed by now: only what they lost is worth the final line.
        lost = {name: h for name, h in self.health.current().items() if h.lost}
        log.info("stopped: %s", status_line(snap, overall, lost))

    def request_stop(self, reason: str = "requested") -> None:
        """Ask run_forever() to shut down (thread- and signal-safe)."""
        if not self._shutdown.is_set():
            self._stop_reason = reason
            self._shutdown.set()

    def request_reload(self) -> None:
        """Follow the configured engine again: the store's active pointer, or the configured
        folder (what SIGHUP does; thread- and signal-safe)."""
        self._reload.set()

    @property
    def stop_requested(self) -> bool:
        return self._shutdown.is_set()

    @property
    def fatal(self) -> str | None:
        """Why a worker failed, if one did."""
        return self._fatal

    def run_forever(self) -> int:
        """Start, tell systemd, serve until SIGTERM/SIGINT, the end of a replay, or a fatal
        error; then stop. Returns the exit code: 0 clean, 1 fatal. Start-up errors raise."""
        with self._signals():
            self.start()
            self.notifier.ready(f"inspecting: {self.config.summary()}")
            try:
                self._serve()
            finally:
                log.info("shutting down (%s)", self._stop_reason or "stop")
                self.notifier.stopping(f"stopping ({self._stop_reason or 'stop'})")
                self.stop()
                self.notifier.close()
        return EXIT_FATAL if self._fatal else EXIT_OK

    # -- the main loop ------------------------------------------------------------------------

    def _serve(self) -> None:
        watchdog = self.config.pipeline.watchdog.enabled and self.watchdog.enabled
        next_status = next_metrics = time.monotonic()
        self._watch_health()
        while not self._shutdown.wait(_TICK_S):
            now = time.monotonic()
            if watchdog:
                self.watchdog.maybe_feed(now)
            if self._reload.is_set():
                self._reload.clear()
                self.swapper.reload()
            if self._watch_health():
                next_status = now  # a change of state shows in STATUS at once
            if now >= next_status:
                next_status = now + self.status_interval_s
                self.notifier.status(self.status())
            if now >= next_metrics:
                next_metrics = now + self.metrics_interval_s
                self._publish_metrics()

    def status(self) -> str:
        snap = self.counters.snapshot()
        alerts = None if self.monitor is None else len(self.monitor.monitor.active())
        return status_line(snap, self._rate.update(snap.parts), self.health.current(), alerts)

    def metrics(self) -> dict[str, Any]:
        snap = self.counters.snapshot()
        return metrics_payload(
            station=self.config.station.station,
            snapshot=snap,
            rate=self._rate.rate,
            queues={"frames": self.frames.qsize(), "outputs": self.outputs.qsize()},
            camera_stats=self.camera.stats.as_dict(),
            mqtt=self.publisher.counters() if self.publisher is not None else None,
            monitor=None
            if self.monitor is None
            else {**self.monitor.monitor.snapshot(), **self.monitor.counters()},
            health=self.health.current(),
        )

    def _watch_health(self) -> bool:
        """Report the components' changes of state; True if there were any."""
        changes = self.health.poll()
        if not changes:
            return False
        publisher = self.publisher
        if publisher is not None:
            current = self.health.current()
            publisher.set_health({k: h for k, h in current.items() if k != "mqtt"})
            for change in changes:
                if change.worth_an_alert:
                    self._alert(publisher, change)
        self.health.tell(changes)
        return True

    def _alert(self, publisher: MqttPublisher, change: Change) -> None:
        payload = health_alert(
            change.component, change.after, self.config.station.station, time.time()
        )
        try:
            publisher.publish("alert", payload, qos=1, durable=True)
        except PartSightError as exc:  # OutboxError: the disk; the change is in the log anyway
            log.error("%s: alert not published: %s", change.component, exc)

    def _publish_metrics(self) -> None:
        if self.publisher is not None:
            self.publisher.publish("metrics", self.metrics(), qos=0, durable=False)

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals can only be handled in the main thread; request_stop() instead
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        def reload(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _on_fatal(self, worker: str, exc: BaseException) -> None:
        self._fatal = f"{worker}: {exc}"
        self.request_stop(f"{worker} worker failed")

    def _on_end(self) -> None:
        self.request_stop("end of the replay")

    def _pylon_camera(self) -> Any:
        """The open pylon device, for a reject output on the camera's own output line."""
        camera = getattr(self.camera, "camera", self.camera)  # unwrap ReconnectingCamera
        return getattr(camera, "instant_camera", None)

    # -- the start-up list --------------------------------------------------------------------

    def _steps(self) -> list[_Step]:
        return [
            _Step("state directory", self._make_state_dir, _nothing),
            _Step("part ids", self._open_part_ids, self._close_part_ids),
            _Step("camera", self.camera.open, lambda _t: self.camera.close()),
            # After the camera: a camera output line needs the open device.
            _Step("reject output", self.reject.open, self.reject.close),
            # After both, so that the first status says how they are; before any part.
            _Step("mqtt", self._start_mqtt, self._stop_mqtt),
            _Step("monitor", self._start_monitor, self._join("monitor")),
            _Step("output worker", self._start_output, self._join("output")),
            _Step("inspection worker", self._start_inspection, self._join("inspection")),
            # Not on the parts' path: an engine load in progress (a TensorRT build can take
            # a minute) is abandoned rather than allowed to eat the shutdown's budget.
            _Step("engine swapper", self.swapper.start, self._join_swapper),
            _Step("acquisition worker", self._start_acquisition, self._join("acquisition")),
        ]

    def _unwind(self, timeout_s: float) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        while self._started:
            step = self._started.pop()
            left = max(0.5, deadline - time.monotonic())
            try:
                step.stop(left)
            except Exception:  # shutdown goes on: the other steps still release their parts
                log.exception("stopping %s failed", step.name)

    def _make_state_dir(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)

    def _open_part_ids(self) -> None:
        if self.part_ids is None:
            self.part_ids = PartIdStore(self.config.part_ids_file)

    def _close_part_ids(self, _timeout_s: float) -> None:
        if self._own_part_ids and self.part_ids is not None:
            self.part_ids.close()

    def _start_mqtt(self) -> None:
        if self._own_publisher:
            self.publisher, self._outbox = open_publisher(self.config)
        if self.publisher is None:
            log.info("MQTT is disabled: results are not published")
            return
        self.health.watch("mqtt", self.publisher.health)
        # The first status says how the camera and the reject output are.
        self.publisher.set_health({k: h for k, h in self.health.current().items() if k != "mqtt"})
        self.publisher.subscribe(f"cmd/{ACTIVATE}", self.swapper.command)
        self.publisher.start()
        self._announce_engine(self.engines.current)

    def _announce_engine(self, active: ActiveEngine) -> None:
        """The retained `engine` topic: what judges the parts now."""
        if self.publisher is None:
            return
        payload = engine_payload(
            active.info,
            active.inspector.threshold,
            signer=active.signer,
            since_ns=active.since_ns,
            since_wall=active.since_wall,
        )
        # Retained, not durable: the publisher sends it again on every reconnect.
        self.publisher.publish("engine", payload, retain=True, durable=False)

    def _respond(self, payload: dict[str, Any]) -> None:
        """An answer on `cmd/response` (durable: it reaches SCADA after an outage too)."""
        if self.publisher is None:
            return
        try:
            self.publisher.publish("cmd/response", payload, qos=1, durable=True)
        except PartSightError as exc:  # OutboxError: the disk
            log.error("command response not published: %s", exc)

    def _stop_mqtt(self, timeout_s: float) -> None:
        if self.publisher is not None:
            self.publisher.stop(flush_timeout_s=min(FLUSH_TIMEOUT_S, max(0.0, timeout_s - 1.0)))
        if self._outbox is not None:
            self._outbox.close()

    def _start_monitor(self) -> None:
        if not self.config.monitor.enabled:
            return
        publisher = self.publisher
        publish = (
            None
            if publisher is None
            else lambda topic, payload, retain: publisher.publish(
                topic, payload, qos=1, retain=retain, durable=True
            )
        )
        self.monitor = MonitorWorker(
            config=self.config.monitor,
            monitor=create_monitor(self.config, self.engines.current.inspector.bundle),
            station=self.config.station.station,
            publish=publish,
            sample=lambda: station_sample(self.clock, self.camera, self._outbox),
            upstream_done=lambda: self.output is None or self.output.done,
            stop=self._stop,
            on_fatal=self._on_fatal,
            figures_of=self._validation_figures,
        )
        self.monitor.start()

    def _validation_figures(self, key: str) -> Mapping[str, Any] | None:
        """The validation figures of the active engine if `key` names it (else None)."""
        found, figures = monitored_engine(self.engines.current.inspector.bundle)
        return figures if found == key else None

    def _start_output(self) -> None:
        publisher = self.publisher
        publish = (
            None
            if publisher is None
            else lambda payload: publisher.publish("result", payload, qos=1, durable=True)
        )
        self.output = OutputWorker(
            outputs=self.outputs,
            in_flight=self.in_flight,
            reject=self.reject,
            publish=publish,
            station=self.config.station.station,
            counters=self.counters,
            progress=self.watchdog.progress,
            clock=self.clock,
            stop=self._stop,
            acquisition_done=lambda: self.acquisition is None or self.acquisition.done,
            on_fatal=self._on_fatal,
            observe=None if self.monitor is None else self.monitor.offer,
        )
        self.output.start()

    def _start_inspection(self) -> None:
        self.inspection = InspectionWorker(
            engines=self.engines,
            frames=self.frames,
            outputs=self.outputs,
            clock=self.clock,
            stop=self._stop,
            upstream_done=lambda: self.acquisition is None or self.acquisition.done,
            output_alive=self._output_alive,
            on_fatal=self._on_fatal,
            measure_frames=measures_frames(self.config.monitor),
        )
        self.inspection.start()

    def _start_acquisition(self) -> None:
        assert self.part_ids is not None
        self.acquisition = AcquisitionWorker(
            camera=self.camera,
            part_ids=self.part_ids,
            settings=acquisition_settings(self.config),
            frames=self.frames,
            outputs=self.outputs,
            in_flight=self.in_flight,
            clock=self.clock,
            stop=self._stop,
            output_alive=self._output_alive,
            on_end=self._on_end,
            on_fatal=self._on_fatal,
            on_trigger=self.reject.expect,
        )
        self.acquisition.start()

    def _output_alive(self) -> bool:
        return self.output is not None and not self.output.done

    def _join_swapper(self, timeout_s: float) -> None:
        self.swapper.join(min(timeout_s, _SWAPPER_JOIN_S))

    def _join(self, name: str) -> Callable[[float], None]:
        def join(timeout_s: float) -> None:
            worker = getattr(self, name)
            if worker is not None:
                worker.join(timeout_s)

        return join


def _nothing(_timeout_s: float) -> None:
    pass
