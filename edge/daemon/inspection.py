"""The inspection stage: registration, inference and the decision, one part at a time.

The engine (edge.inspector.Inspector) registers, scores and decides; this stage turns what it
says, or why it could not say anything, into the part's verdict:

- a part already past its deadline when it comes off the queue is not inspected: NOK "timeout";
- ImageError (a frame the engine cannot take): NOK "image";
- InferenceError (the backend failed): ERROR "inference";
- the engine's own ERROR (its heatmap classifier could not judge the part): ERROR "classifier";
- a verdict ready after the deadline is not passed late: NOK "timeout" (its score is kept).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace

from edge.daemon.decide import judged, rejection
from edge.daemon.engines import EngineSlot
from edge.daemon.messages import Heartbeat, Outcome, Part
from edge.daemon.queues import StageQueue
from edge.daemon.verdict import ERROR, IMAGE, INFERENCE, NOK, TIMEOUT, EngineInfo, Verdict
from edge.daemon.worker import FatalHandler, Worker
from edge.errors import ImageError, InferenceError, PartSightError
from edge.monitor.frame_stats import frame_stats
from hw.camera.clock import Clock

log = logging.getLogger(__name__)

_GET_TIMEOUT_S = 0.1


class InspectionWorker(Worker):
    def __init__(
        self,
        *,
        engines: EngineSlot,
        frames: StageQueue[Part | Heartbeat],
        outputs: StageQueue[Outcome | Heartbeat],
        clock: Clock,
        stop: threading.Event,
        upstream_done: Callable[[], bool],
        output_alive: Callable[[], bool],
        on_fatal: FatalHandler,
        measure_frames: bool = False,
    ) -> None:
        super().__init__("inspection", stop, on_fatal)
        # Brightness, contrast and focus of every frame, for the metrics monitor (~1 ms).
        self.measure_frames = measure_frames
        self.engines = engines
        self.frames = frames
        self.outputs = outputs
        self.clock = clock
        self._upstream_done = upstream_done
        self._output_alive = output_alive

    def loop(self) -> None:
        # On stop, the parts already grabbed are still inspected: in-flight parts finish.
        while True:
            try:
                item = self.frames.get(timeout=_GET_TIMEOUT_S)
            except queue.Empty:
                if self.stop_event.is_set() and self._upstream_done():
                    return
                continue
            out: Outcome | Heartbeat = (
                item if isinstance(item, Heartbeat) else Outcome(self.judge(item), progressed=True)
            )
            if not self.outputs.put_while(out, self._output_alive):
                if isinstance(out, Outcome):  # a heartbeat nobody waits for is no loss
                    log.error("part %d: the output stage is gone", out.verdict.part_id)
                return

    def judge(self, part: Part) -> Verdict:
        """The part's verdict, with its frame's statistics when they are measured."""
        grab = part.grab
        if not self.measure_frames or grab is None or grab.image is None or part.fault:
            return self._judge(part)
        try:
            stats = frame_stats(grab.image)
        except ValueError:  # a pixel type the engine refuses as well: judged as such
            return self._judge(part)
        return replace(self._judge(part), frame=stats)

    def _judge(self, part: Part) -> Verdict:
        started = self.clock.monotonic_ns()
        latency = dict(part.latency_ms)
        latency["queue"] = max(0.0, (started - part.enqueued_ns) / 1e6)
        if part.fault:
            return self._reject(part, part.fault_verdict, part.fault_reason, part.fault, latency)
        if started >= part.deadline_ns:
            return self._reject(part, NOK, TIMEOUT, "deadline passed while queued", latency)
        grab = part.grab
        assert grab is not None and grab.image is not None  # a Part without a fault has one
        source = grab.source or f"part {part.part_id}"
        active = self.engines.for_trigger(part.trigger_ns)  # the swap point: see EngineSlot
        engine = active.info
        try:
            inspection = active.inspector.inspect(grab.image, source, grab.bit_depth)
        except ImageError as exc:
            return self._reject(part, NOK, IMAGE, str(exc), latency, engine=engine)
        except InferenceError as exc:
            log.error("part %d: inference failed: %s", part.part_id, exc)
            return self._reject(part, ERROR, INFERENCE, str(exc), latency, engine=engine)
        except PartSightError as exc:  # e.g. registration failing on the device: judge, go on
            log.error("part %d: cannot be judged: %s", part.part_id, exc)
            return self._reject(part, ERROR, INFERENCE, str(exc), latency, engine=engine)
        done = self.clock.monotonic_ns()
        latency.update(inspection.latency_ms)
        latency["inspect"] = (done - started) / 1e6
        if done > part.deadline_ns:
            return self._reject(
                part,
                NOK,
                TIMEOUT,
                f"verdict ready {(done - part.deadline_ns) / 1e6:.1f} ms after the deadline",
                latency,
                engine=engine,
                score=inspection.score,
                threshold=inspection.threshold,
            )
        return judged(
            part_id=part.part_id,
            trigger_ns=part.trigger_ns,
            trigger_wall=part.trigger_wall,
            inspection=inspection,
            now_ns=done,
            now_wall=self.clock.time(),
            latency=latency,
            camera=part.camera,
            engine=engine,
            source=grab.source,
        )

    def _reject(
        self,
        part: Part,
        verdict: str,
        reason: str,
        detail: str,
        latency: Mapping[str, float],
        *,
        engine: EngineInfo | None = None,  # the engine, when it was involved
        score: float | None = None,
        threshold: float | None = None,
    ) -> Verdict:
        return rejection(
            part_id=part.part_id,
            trigger_ns=part.trigger_ns,
            trigger_wall=part.trigger_wall,
            verdict=verdict,
            reason=reason,
            detail=detail,
            now_ns=self.clock.monotonic_ns(),
            now_wall=self.clock.time(),
            latency=latency,
            camera=part.camera,
            engine=engine,
            source=None if part.grab is None else part.grab.source,
            score=score,
            threshold=threshold,
        )
