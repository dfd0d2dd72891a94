"""What travels between the pipeline's workers.

frames queue (acquisition → inspection):  Part | Heartbeat
outputs queue (inspection, acquisition → output):  Outcome | Heartbeat

A Heartbeat goes through the same queues as parts while no part flows, so the watchdog is fed
only when every stage really moves things along; a stalled stage holds it up like a part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.daemon.verdict import CameraInfo, Verdict
from hw.frame import Grab


@dataclass(kw_only=True)
class Part:
    """One triggered part on its way to a verdict."""

    part_id: int
    trigger_ns: int
    trigger_wall: float
    deadline_ns: int  # trigger + pipeline.deadline_ms: no verdict passes later than this
    grab: Grab | None  # None when the camera delivered nothing for this trigger
    fault: str = ""  # why there is no usable image (empty when there is one)
    fault_verdict: str = ""  # the verdict for the fault: NOK or ERROR
    fault_reason: str = ""  # the reason for the fault: camera or image
    latency_ms: dict[str, float] = field(default_factory=dict)
    enqueued_ns: int = 0  # when it entered the frames queue

    @property
    def camera(self) -> CameraInfo | None:
        return None if self.grab is None else CameraInfo.from_grab(self.grab)


@dataclass(frozen=True)
class Heartbeat:
    """Proof of life while no part flows."""

    sent_ns: int


@dataclass(frozen=True)
class Outcome:
    """A verdict on its way to the outputs. `progressed` is True when it came through the
    inspection stage: only those (and heartbeats) count as pipeline progress for the watchdog,
    so overload and timeout verdicts from a stalled pipeline never keep it fed."""

    verdict: Verdict
    progressed: bool
