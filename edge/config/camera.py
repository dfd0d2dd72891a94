"""[camera]: which camera, chosen by `kind`; each maps onto its hw.camera settings dataclass.

Defaults are taken from the hw dataclasses themselves, so the two cannot drift apart; the
dataclass's own checks run at load time too (a backstop: the fields here check the same
rules first, with the field's location).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from edge.config.base import ConfigPath, ExistingDir, StrictModel
from edge.manifest import InputSpec
from hw.camera.pixels import PIXEL_FORMATS
from hw.camera.settings import BaslerSettings, ReplaySettings
from hw.errors import CameraConfigError


def _defaults(cls: type) -> dict[str, Any]:
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


_BASLER = _defaults(BaslerSettings)
_REPLAY = _defaults(ReplaySettings)


def _list_to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value  # TOML arrays are lists


Roi = Annotated[tuple[int, int, int, int], BeforeValidator(_list_to_tuple)]


class BaslerCameraConfig(StrictModel):
    """A Basler camera through pypylon (USB3 Vision or GigE Vision)."""

    kind: Literal["basler"] = Field("basler", description="a Basler camera")
    serial: str | None = Field(
        _BASLER["serial"], description="the camera's serial number; omitted: the first one found"
    )
    trigger: Literal["software", "hardware"] = Field(
        _BASLER["trigger"],
        description="software: the daemon triggers (see pipeline.trigger); hardware: a sensor "
        "wired to trigger_line",
    )
    trigger_line: str = Field(
        _BASLER["trigger_line"], description="the camera input line for trigger = 'hardware'"
    )
    exposure_us: float | None = Field(
        _BASLER["exposure_us"], gt=0, description="exposure time, µs; omitted: keep the camera's"
    )
    gain_db: float | None = Field(
        _BASLER["gain_db"], description="gain, dB; omitted: keep the camera's own setting"
    )
    pixel_format: str = Field(
        _BASLER["pixel_format"], description=f"one of: {', '.join(PIXEL_FORMATS)}"
    )
    roi: Roi | None = Field(
        _BASLER["roi"],
        description="[x, y, width, height] in sensor pixels; omitted: keep the camera's ROI",
    )
    grab_timeout_s: float = Field(
        _BASLER["grab_timeout_s"], gt=0, description="how long the pipeline waits for a frame"
    )
    reconnect_min_s: float = Field(
        _BASLER["reconnect_min_s"], gt=0, description="first delay before reopening a lost camera"
    )
    reconnect_max_s: float = Field(
        _BASLER["reconnect_max_s"], gt=0, description="longest delay between reopen attempts"
    )
    emulation_image_dir: ConfigPath | None = Field(
        _BASLER["emulation_image_dir"],
        description="pylon camera emulation only: images it plays instead of its test pattern",
    )

    @field_validator("pixel_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in PIXEL_FORMATS:
            raise ValueError(f"{value!r} is not supported (use one of: {', '.join(PIXEL_FORMATS)})")
        return value

    @field_validator("roi")
    @classmethod
    def _sane_roi(cls, value: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if value is not None:
            x, y, width, height = value
            if x < 0 or y < 0:
                raise ValueError(f"the offsets must be >= 0, got x={x}, y={y}")
            if width <= 0 or height <= 0:
                raise ValueError(f"width and height must be > 0, got {width}x{height}")
        return value

    @model_validator(mode="after")
    def _check(self) -> BaslerCameraConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        _backstop(self.to_settings)
        return self

    def to_settings(self) -> BaslerSettings:
        return BaslerSettings(
            serial=self.serial,
            trigger=self.trigger,
            trigger_line=self.trigger_line,
            exposure_us=self.exposure_us,
            gain_db=self.gain_db,
            pixel_format=self.pixel_format,
            roi=self.roi,
            grab_timeout_s=self.grab_timeout_s,
            reconnect_min_s=self.reconnect_min_s,
            reconnect_max_s=self.reconnect_max_s,
            emulation_image_dir=self.emulation_image_dir,
        )


class ReplayCameraConfig(StrictModel):
    """A folder of images played back as if a camera took them (commissioning, demos, tests)."""

    kind: Literal["replay"] = Field("replay", description="a folder of images")
    folder: ExistingDir = Field(description="the folder of images, played in name order")
    rate_hz: float = Field(
        _REPLAY["rate_hz"], gt=0, description="frames per second delivered at most"
    )
    free_run: bool = Field(
        False, description="true: deliver frames as fast as they are asked for (ignores rate_hz)"
    )
    loop: bool = Field(_REPLAY["loop"], description="start again after the last image")
    max_pixels: int = Field(
        _REPLAY["max_pixels"],
        gt=0,
        description="an image file with more pixels is refused from its header, before "
        "decoding (NOK image)",
    )

    @model_validator(mode="after")
    def _check(self) -> ReplayCameraConfig:
        if self.free_run and "rate_hz" in self.model_fields_set:
            raise ValueError("set either rate_hz or free_run = true, not both")
        _backstop(self.to_settings)
        return self

    def to_settings(self) -> ReplaySettings:
        return ReplaySettings(
            folder=self.folder,
            rate_hz=None if self.free_run else self.rate_hz,
            loop=self.loop,
            max_pixels=self.max_pixels,
        )


CameraConfig = Annotated[BaslerCameraConfig | ReplayCameraConfig, Field(discriminator="kind")]


def _backstop(make: Callable[[], object]) -> None:
    try:
        make()
    except CameraConfigError as exc:
        raise ValueError(str(exc)) from None


def engine_fit(camera: BaslerCameraConfig | ReplayCameraConfig, spec: InputSpec) -> list[str]:
    """What about the camera's frames the engine cannot take, as `key: message` lines: a
    pixel format with other channels than the engine's (a colour format on a mono engine, or
    the other way round), an ROI of another size than the engine's frames. Empty when they fit.
    A replay camera's files are what they are: nothing to compare before they are read."""
    if not isinstance(camera, BaslerCameraConfig):
        return []
    problems = []
    fmt = PIXEL_FORMATS[camera.pixel_format]
    channels = 1 if fmt.channels == "mono" else 3
    if channels != spec.channels:
        kinds = {1: "mono (1 channel)", 3: "colour (3 channels)"}
        problems.append(
            f"pixel_format: {camera.pixel_format} gives {kinds[channels]} frames; the engine "
            f"takes {kinds[spec.channels]} frames (set a {kinds[spec.channels].split()[0]} "
            "format, or use an engine trained on such frames)"
        )
    if camera.roi is not None:
        width, height = camera.roi[2], camera.roi[3]
        if not spec.takes(height, width):
            problems.append(
                f"roi: {height}x{width} (HxW) frames; the engine takes {spec.sizes_taken()}"
            )
    return problems
