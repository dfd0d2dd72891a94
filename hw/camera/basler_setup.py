"""Applying BaslerSettings to an open camera, feature by feature, in the order cameras need:
pixel format (it changes the ROI increments), ROI, exposure, gain, trigger, emulation images.
Every refusal is a CameraConfigError naming the setting and the camera feature."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hw.camera.basler_features import Features
from hw.camera.pixels import PixelFormat
from hw.camera.settings import BaslerSettings, Roi
from hw.errors import CameraConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What the camera ended up with (it may round what it was asked for)."""

    width: int
    height: int
    camera_pixel_format: str
    exposure_us: float | None
    gain_db: float | None


def apply_settings(features: Features, settings: BaslerSettings, fmt: PixelFormat) -> Applied:
    camera_format = _pixel_format(features, fmt)
    if settings.roi is not None:
        _roi(features, settings.roi)
    exposure = _exposure(features, settings.exposure_us)
    gain = _gain(features, settings.gain_db)
    _trigger(features, settings)
    if settings.emulation_image_dir is not None:
        _emulation_images(features, settings)
    elif features.has("ImageFileMode"):
        # The emulation keeps its state while the process lives: back to its own test pattern.
        features.set_quietly("ImageFileMode", "Off")
        if features.has("TestImageSelector") and features.get("TestImageSelector") == "Off":
            features.set_quietly("TestImageSelector", "Testimage1")
    features.set_quietly("AcquisitionMode", "Continuous")
    return Applied(
        width=int(features.get("Width")),
        height=int(features.get("Height")),
        camera_pixel_format=camera_format,
        exposure_us=exposure,
        gain_db=gain,
    )


def _pixel_format(features: Features, fmt: PixelFormat) -> str:
    offered = features.symbolics("PixelFormat")
    name = next((n for n in fmt.camera_names if n in offered), None)
    if name is None:
        raise CameraConfigError(
            f"pixel_format: this camera does not offer {fmt.name} "
            f"(it offers: {', '.join(offered) or 'nothing'})"
        )
    features.set_enum("pixel_format", "PixelFormat", name)
    return name


def _roi(features: Features, roi: Roi) -> None:
    x, y, width, height = roi
    # Offsets to 0 first, so the full width and height are allowed while sizing.
    for offset in ("OffsetX", "OffsetY"):
        if features.writable(offset):
            features.set_int("roi", offset, 0)
    features.set_int("roi", "Width", width)
    features.set_int("roi", "Height", height)
    features.set_int("roi", "OffsetX", x)
    features.set_int("roi", "OffsetY", y)


def _exposure(features: Features, exposure_us: float | None) -> float | None:
    # USB, ace 2 and the emulation call it ExposureTime; older GigE aces ExposureTimeAbs.
    name = features.first("ExposureTime", "ExposureTimeAbs")
    if exposure_us is not None:
        if name is None:
            raise CameraConfigError("exposure_us: this camera has no ExposureTime feature")
        features.set_quietly("ExposureAuto", "Off")
        return features.set_float("exposure_us", name, exposure_us)
    return None if name is None else float(features.get(name))


def _gain(features: Features, gain_db: float | None) -> float | None:
    features.set_quietly("GainSelector", "All")
    name = features.first("Gain", "GainAbs")
    if gain_db is not None:
        if name is None:
            raise CameraConfigError(
                "gain_db: this camera has no gain in dB (Gain/GainAbs); leave gain_db unset "
                "and set its raw gain (GainRaw) in the camera's user set"
            )
        features.set_quietly("GainAuto", "Off")
        return features.set_float("gain_db", name, gain_db)
    return None if name is None else float(features.get(name))


def _trigger(features: Features, settings: BaslerSettings) -> None:
    selectors = features.symbolics("TriggerSelector")
    if "FrameStart" not in selectors:
        raise CameraConfigError("trigger: this camera has no FrameStart trigger")
    # Any other trigger left on (AcquisitionStart, FrameBurstStart...) would hold frames back.
    for selector in selectors:
        if selector != "FrameStart" and features.set_quietly("TriggerSelector", selector):
            features.set_quietly("TriggerMode", "Off")
    features.set_enum("trigger", "TriggerSelector", "FrameStart")
    features.set_enum("trigger", "TriggerMode", "On")
    if settings.trigger == "software":
        features.set_enum("trigger", "TriggerSource", "Software")
    else:
        features.set_enum("trigger_line", "TriggerSource", settings.trigger_line)
        features.set_quietly("TriggerActivation", "RisingEdge")


def _emulation_images(features: Features, settings: BaslerSettings) -> None:
    folder = settings.emulation_image_dir
    assert folder is not None
    if not features.has("ImageFilename"):
        raise CameraConfigError(
            "emulation_image_dir: only the pylon camera emulation can replay images "
            "(this camera has no ImageFilename feature)"
        )
    if not folder.exists():
        raise CameraConfigError(f"emulation_image_dir: {folder} does not exist")
    features.set_enum("emulation_image_dir", "TestImageSelector", "Off")
    features.set_enum("emulation_image_dir", "ImageFileMode", "On")
    features.set_string("emulation_image_dir", "ImageFilename", str(folder.resolve()))
    log.info("camera emulation replays images from %s", folder)
