"""The acquisition stage: grabs frames, hands out part ids, and never waits on inference.

- Software trigger: triggers at `rate_hz`, or free-running as soon as the inspection has taken
  the part before (a free-running replay waits the same way). Every trigger is a part: a
  timeout or a lost camera makes it an ERROR "camera".
- Hardware trigger (and replay): waits for the next frame; a timeout only means no part came.
  Frames the camera's counter says were lost are parts too (ERROR "camera").
- A frame the camera delivered broken is an ERROR "camera"; one of the wrong size a NOK "image".
- The frames queue full: the part is dropped as NOK "overload", straight to the output stage.
- No part for `heartbeat_s`: a heartbeat goes down the pipeline, for the watchdog.
- A replay at its end (EndOfStream): the daemon stops cleanly.

Every camera fault is an ERROR, never a NOK: the part was not looked at, so it says nothing about
the parts being made (a NOK counts against the process, an ERROR against the station), and it is
rejected all the same (result.schema.json says so for consumers).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge.daemon.decide import rejection
from edge.daemon.messages import Heartbeat, Outcome, Part
from edge.daemon.pacing import Pacer
from edge.daemon.queues import StageQueue
from edge.daemon.tracker import InFlight, Ticket
from edge.daemon.verdict import CAMERA, ERROR, IMAGE, NOK, OVERLOAD
from edge.daemon.worker import FatalHandler, Worker
from edge.part_ids import PartIdStore
from hw.camera.base import Camera
from hw.camera.clock import Clock
from hw.errors import CameraDisconnected, CameraError, CameraTimeout, EndOfStream
from hw.frame import Grab

log = logging.getLogger(__name__)

TriggerMode = Literal["software", "hardware"]

# A counter jump larger than this is a camera reset or a wrap, not lost parts.
_MAX_MISSED_PARTS = 1000
# While the camera is gone, how long to wait between attempts (without a reconnect schedule).
_OUTAGE_POLL_S = 0.5


@dataclass(frozen=True)
class AcquisitionSettings:
    trigger: TriggerMode  # "hardware" for anything that decides itself when frames come
    grab_timeout_s: float
    rate_hz: float | None  # software trigger: the rate (None: free run)
    deadline_ms: float
    heartbeat_s: float
    # Grab only when the inspection has taken the part before: a free-running software
    # trigger, or a replay asked to go as fast as the pipeline takes it. Never overloaded.
    free_run: bool = False


class AcquisitionWorker(Worker):
    def __init__(
        self,
        *,
        camera: Camera,
        part_ids: PartIdStore,
        settings: AcquisitionSettings,
        frames: StageQueue[Part | Heartbeat],
        outputs: StageQueue[Outcome | Heartbeat],
        in_flight: InFlight,
        clock: Clock,
        stop: threading.Event,
        output_alive: Callable[[], bool],
        on_end: Callable[[], None],
        on_fatal: FatalHandler,
        on_trigger: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__("acquisition", stop, on_fatal)
        # Told (part_id, trigger_ns) of every part: the reject output arms its own timeout, so
        # a part is ejected even if every stage after this one stalls.
        self.on_trigger = on_trigger
        self.camera = camera
        self.part_ids = part_ids
        self.settings = settings
        self.frames = frames
        self.outputs = outputs
        self.in_flight = in_flight
        self.clock = clock
        self.on_end = on_end
        self._output_alive = output_alive
        self._software = settings.trigger == "software"
        self._pacer = (
            Pacer(settings.rate_hz, clock)
            if self._software and settings.rate_hz is not None and not settings.free_run
            else None
        )
        self._deadline_ns = round(settings.deadline_ms * 1e6)
        self._heartbeat_ns = round(settings.heartbeat_s * 1e9)
        self._last_sent_ns = clock.monotonic_ns()
        self.parts = 0
        self.overloaded = 0

    def loop(self) -> None:
        while not self.stop_event.is_set():
            if not self._wait_for_trigger():
                break
            if not self._acquire_once():
                break
            self._maybe_heartbeat()
        log.info("acquisition stopped after %d part(s)", self.parts)

    # -- one acquisition ----------------------------------------------------------------------

    def _wait_for_trigger(self) -> bool:
        """Wait for the trigger schedule, or (free run) for room downstream; False on stop."""
        if self._pacer is not None:
            return self._pacer.wait(self.stop_event, self._maybe_heartbeat)
        if not self.settings.free_run:
            return True
        # Free run triggers once the part before has been taken by the inspection: grabbing
        # overlaps inspecting, so throughput is the same as with a full queue, but a part never
        # waits behind several others (latency stays about two inspection times).
        while not self.frames.wait_for_room(0.1, below=1):
            if self.stop_event.is_set():
                return False
            self._maybe_heartbeat()
        return not self.stop_event.is_set()

    def _acquire_once(self) -> bool:
        """Grab one frame and dispatch its part(s). False when the stream has ended."""
        started_ns, started_wall = self.clock.monotonic_ns(), self.clock.time()
        try:
            grab = self.camera.grab(self.settings.grab_timeout_s)
        except EndOfStream as exc:
            log.info("%s; stopping the daemon", exc)
            self.on_end()
            return False
        except CameraTimeout as exc:
            if self._software:  # a part was triggered and never seen
                self._camera_fault(started_ns, started_wall, exc)
            return True
        except CameraDisconnected as exc:
            self._outage(started_ns, started_wall, exc)
            return True
        except CameraError as exc:  # anything else the camera refuses mid-run: the same
            log.error("%s: %s", self.camera.name, exc)
            self._outage(started_ns, started_wall, exc)
            return True
        grab_ms = (self.clock.monotonic_ns() - started_ns) / 1e6
        if not self._software and grab.missed:
            self._lost_frames(grab)
        self._dispatch(self._part_from(grab, grab_ms))
        return True

    def _part_from(self, grab: Grab, grab_ms: float) -> Part:
        part = Part(
            part_id=self.part_ids.next(),
            trigger_ns=grab.trigger_ns,
            trigger_wall=grab.wall_time,
            deadline_ns=grab.trigger_ns + self._deadline_ns,
            grab=grab,
            latency_ms={"grab": grab_ms},
        )
        if not grab.ok:
            part.fault = grab.error or "no image"
            # The camera worked but its image cannot be judged (the wrong size, an image file
            # too large to decode): an "image" NOK, like a frame the engine refuses.
            if grab.fault == "image":
                part.fault_verdict, part.fault_reason = NOK, IMAGE
            else:
                part.fault_verdict, part.fault_reason = ERROR, CAMERA
        return part

    def _camera_fault(self, trigger_ns: int, trigger_wall: float, exc: Exception) -> None:
        """A triggered part the camera gave no frame for."""
        self._dispatch(
            Part(
                part_id=self.part_ids.next(),
                trigger_ns=trigger_ns,
                trigger_wall=trigger_wall,
                deadline_ns=trigger_ns + self._deadline_ns,
                grab=None,
                fault=str(exc),
                fault_verdict=ERROR,
                fault_reason=CAMERA,
                latency_ms={"grab": (self.clock.monotonic_ns() - trigger_ns) / 1e6},
            )
        )

    def _outage(self, trigger_ns: int, trigger_wall: float, exc: Exception) -> None:
        if self._software:
            self._camera_fault(trigger_ns, trigger_wall, exc)
            if self._pacer is not None:
                return  # the schedule already spaces the failing triggers
        # Without a schedule, wait for the next reconnection attempt (the camera's health says
        # when), so an outage is not a flood of failed triggers or a busy loop.
        retry_s = self.camera.health().retry_in_s
        retry_s = _OUTAGE_POLL_S if retry_s is None else retry_s
        self.stop_event.wait(min(max(retry_s, 0.05), _OUTAGE_POLL_S))

    def _lost_frames(self, grab: Grab) -> None:
        """Frames the camera sent that never arrived: each was a part, and is rejected."""
        missed = grab.missed
        if missed > _MAX_MISSED_PARTS:
            log.error(
                "%s: frame counter jumped by %d at %s; not counting it as lost parts",
                self.camera.name,
                missed,
                grab.frame_counter,
            )
            return
        for _ in range(missed):
            self._dispatch(
                Part(
                    part_id=self.part_ids.next(),
                    trigger_ns=grab.trigger_ns,
                    trigger_wall=grab.wall_time,
                    deadline_ns=grab.trigger_ns + self._deadline_ns,
                    grab=None,
                    fault=f"frame lost before frame counter {grab.frame_counter}",
                    fault_verdict=ERROR,
                    fault_reason=CAMERA,
                )
            )

    # -- handing parts on ---------------------------------------------------------------------

    def _dispatch(self, part: Part) -> None:
        self.parts += 1
        if self.on_trigger is not None:
            self.on_trigger(part.part_id, part.trigger_ns)
        self.in_flight.register(
            Ticket(part.part_id, part.trigger_ns, part.trigger_wall, part.deadline_ns, part.camera)
        )
        part.enqueued_ns = self.clock.monotonic_ns()
        try:
            self.frames.put_nowait(part)
        except queue.Full:
            self._overload(part)
            return
        self._last_sent_ns = part.enqueued_ns

    def _overload(self, part: Part) -> None:
        """The pipeline is full: the part is rejected now, never queued and never lost (this
        waits only when the output stage itself is behind, since a verdict is never dropped)."""
        self.overloaded += 1
        verdict = rejection(
            part_id=part.part_id,
            trigger_ns=part.trigger_ns,
            trigger_wall=part.trigger_wall,
            verdict=NOK,
            reason=OVERLOAD,
            detail=f"frames queue full ({self.frames.maxsize})",
            now_ns=self.clock.monotonic_ns(),
            now_wall=self.clock.time(),
            latency=part.latency_ms,
            camera=part.camera,
            source=None if part.grab is None else part.grab.source,
        )
        if not self.outputs.put_while(Outcome(verdict, progressed=False), self._output_alive):
            log.error("part %d: overload NOK could not be handed to the outputs", part.part_id)

    def _maybe_heartbeat(self) -> None:
        now = self.clock.monotonic_ns()
        if now - self._last_sent_ns < self._heartbeat_ns:
            return
        try:
            self.frames.put_nowait(Heartbeat(now))
        except queue.Full:
            return  # parts are waiting: they prove progress themselves once they move
        self._last_sent_ns = now
