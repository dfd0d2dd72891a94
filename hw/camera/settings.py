"""Camera settings, one frozen dataclass per kind (the daemon's config maps onto these).

Each validates itself on construction and raises CameraConfigError naming the field, so a bad
configuration fails at start-up rather than at the first part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hw.camera.image_file import DEFAULT_MAX_PIXELS
from hw.camera.pixels import PIXEL_FORMATS
from hw.errors import CameraConfigError

TriggerMode = Literal["software", "hardware"]
Roi = tuple[int, int, int, int]  # x, y, width, height in sensor pixels


@dataclass(frozen=True, kw_only=True)
class BaslerSettings:
    """A Basler camera through pypylon."""

    kind: Literal["basler"] = "basler"
    serial: str | None = None  # None: the first camera found
    trigger: TriggerMode = "software"
    trigger_line: str = "Line1"  # the input line for trigger="hardware"
    exposure_us: float | None = None  # None: keep the camera's own setting
    gain_db: float | None = None  # None: keep the camera's own setting
    pixel_format: str = "Mono8"  # one of PIXEL_FORMATS
    roi: Roi | None = None  # None: keep the camera's own ROI
    grab_timeout_s: float = 1.0  # what the pipeline passes to grab(); not used by the camera
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # The pylon camera emulation only: a folder (or one file) of images it replays instead of
    # its test pattern (ImageFilename). Refused on a real camera.
    emulation_image_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.emulation_image_dir is not None:
            object.__setattr__(self, "emulation_image_dir", Path(self.emulation_image_dir))
        if self.kind != "basler":
            raise CameraConfigError(f"kind: expected 'basler', got {self.kind!r}")
        if self.trigger not in ("software", "hardware"):
            raise CameraConfigError(
                f"trigger: expected 'software' or 'hardware', got {self.trigger!r}"
            )
        if self.pixel_format not in PIXEL_FORMATS:
            known = ", ".join(PIXEL_FORMATS)
            raise CameraConfigError(
                f"pixel_format: {self.pixel_format!r} is not supported (use one of: {known})"
            )
        if self.exposure_us is not None and self.exposure_us <= 0:
            raise CameraConfigError(f"exposure_us: must be > 0, got {self.exposure_us}")
        if self.roi is not None:
            object.__setattr__(self, "roi", tuple(self.roi))  # TOML gives a list
            _check_roi(self.roi)
        _check_positive("grab_timeout_s", self.grab_timeout_s)
        _check_positive("reconnect_min_s", self.reconnect_min_s)
        if self.reconnect_max_s < self.reconnect_min_s:
            raise CameraConfigError(
                f"reconnect_max_s: must be >= reconnect_min_s ({self.reconnect_min_s}), "
                f"got {self.reconnect_max_s}"
            )


@dataclass(frozen=True, kw_only=True)
class ReplaySettings:
    """A folder of images played back as if a camera took them."""

    kind: Literal["replay"] = "replay"
    folder: Path
    rate_hz: float | None = 10.0  # None: as fast as grab() is called
    loop: bool = False
    # An image file declaring more pixels is refused from its header, undecoded (NOK "image").
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        object.__setattr__(self, "folder", Path(self.folder))  # a str from a config is fine
        if self.kind != "replay":
            raise CameraConfigError(f"kind: expected 'replay', got {self.kind!r}")
        if self.rate_hz is not None:
            _check_positive("rate_hz", self.rate_hz)
        _check_positive("max_pixels", self.max_pixels)


CameraSettings = BaslerSettings | ReplaySettings


def _check_positive(field: str, value: float) -> None:
    if not value > 0:
        raise CameraConfigError(f"{field}: must be > 0, got {value}")


def _check_roi(roi: Roi) -> None:
    if len(roi) != 4 or not all(isinstance(v, int) for v in roi):
        raise CameraConfigError(f"roi: expected four integers (x, y, width, height), got {roi!r}")
    x, y, width, height = roi
    if x < 0 or y < 0:
        raise CameraConfigError(f"roi: the offsets must be >= 0, got x={x}, y={y}")
    if width <= 0 or height <= 0:
        raise CameraConfigError(f"roi: width and height must be > 0, got {width}x{height}")
