"""Per-camera counters, read by the daemon for its metrics and status messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CameraStats:
    grabs: int = 0  # Grab objects returned, good or failed
    failed_buffers: int = 0  # grabs returned with an error (incomplete buffer, unreadable file)
    missed_frames: int = 0  # frames the camera's counter says never reached us
    stale_frames: int = 0  # late frames thrown away before a software trigger
    timeouts: int = 0
    disconnects: int = 0  # outages: the camera was lost (or absent at start)
    reconnects: int = 0  # successful reopenings after an outage
    reconnect_failures: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
