"""What the camera layer hands to the pipeline: one acquisition attempt (Grab).

A Grab is reported for every frame the camera delivered, good or not: a failed or incomplete
buffer comes back with `image=None` and `error` set, so the part it belongs to is rejected with
reason "camera" rather than silently dropped; a frame the camera delivered but that cannot be
judged (the wrong size, an image file too large to decode) has `fault="image"`, reason "image".
The pipeline turns a Grab into a Frame (adding the part_id); hw/ knows nothing about parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

# Which moment trigger_ns/wall_time record:
#   "trigger"  when we issued the software trigger (exposure starts right after);
#   "arrival"  when the frame reached the host (hardware trigger, replay): the real trigger was
#              earlier by about the exposure plus the transfer time.
TimeSource = Literal["trigger", "arrival"]
# Who is at fault when a Grab has an error: the camera (a failed buffer) or the image it gave.
GrabFault = Literal["camera", "image"]


@dataclass(frozen=True, kw_only=True)
class Grab:
    """One acquisition attempt, as the camera layer reports it."""

    image: (
        np.ndarray | None
    )  # uint8/uint16, (H, W) mono or (H, W, 3) BGR; None if the buffer failed
    trigger_ns: int  # time.monotonic_ns() at the moment time_source names
    wall_time: float  # time.time() at the same moment
    time_source: TimeSource
    frame_counter: int | None  # the camera's own counter (BlockID), for gap detection
    exposure_us: float | None
    gain_db: float | None
    error: str | None = None  # why image is None, e.g. "incomplete buffer (error 0x7: ...)"
    missed: int = 0  # frames the counter says were lost between the previous grab and this one
    source: str | None = None  # where the image came from when that is a file (replay)
    fault: GrabFault = "camera"  # with `error`: what it is about
    # Significant bits of `image`'s values (they lie in 0..2**bit_depth - 1): 8 or 16 from a
    # camera (10/12-bit formats come MSB-aligned in 16 bits); None when not known, as for an
    # image file (a 16-bit file may hold 12-bit values: the engine's trained depth decides).
    bit_depth: int | None = None

    def __post_init__(self) -> None:
        # A Grab without an image must say why: the pipeline publishes the reason with the NOK.
        if self.image is None and not self.error:
            raise ValueError("a Grab without an image needs an error")
        if self.bit_depth is not None and not 1 <= self.bit_depth <= 16:
            raise ValueError(f"bit_depth must be in 1..16, got {self.bit_depth}")
        if self.missed < 0:
            raise ValueError(f"missed must be >= 0, got {self.missed}")

    @property
    def ok(self) -> bool:
        """True when the grab carries a usable image."""
        return self.image is not None and self.error is None
