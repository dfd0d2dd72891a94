"""Frame-counter gap detection: how many frames never reached us, from the camera's BlockID."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# GigE Vision 1.x block IDs are 16 bits and skip 0 when they wrap (65535 is followed by 1);
# USB3 Vision and GigE Vision 2 extended IDs are 64 bits and never wrap in practice.
GIGE_BLOCK_ID_MAX = 0xFFFF
# A backwards step is read as a wrap only if it would mean fewer lost frames than this;
# anything else is the counter restarting (acquisition restarted, camera reset).
MAX_WRAP_GAP = 4096


def frames_missed(previous: int | None, current: int | None) -> int:
    """Frames lost between two consecutive frames with these counters (0 if unknown)."""
    if previous is None or current is None:
        return 0
    if current > previous:
        return current - previous - 1
    if previous <= GIGE_BLOCK_ID_MAX and current >= 1:
        wrapped = (GIGE_BLOCK_ID_MAX - previous) + (current - 1)
        if wrapped < MAX_WRAP_GAP:
            return wrapped
    log.info("frame counter restarted (%s after %s); no gap counted", current, previous)
    return 0


class GapCounter:
    """Remembers the last counter seen and reports the gap before each new one."""

    def __init__(self) -> None:
        self.last: int | None = None

    def update(self, current: int | None) -> int:
        missed = frames_missed(self.last, current)
        if current is not None:
            self.last = current
        return missed

    def reset(self) -> None:
        """Forget the last counter: the camera restarts its count when acquisition restarts."""
        self.last = None
