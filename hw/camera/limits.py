"""Checking a value against a camera feature's limits before setting it, so that a bad setting
is refused with a message naming both the setting and the camera feature."""

from __future__ import annotations

from hw.errors import CameraConfigError


def check_int(setting: str, feature: str, value: int, lo: int, hi: int, inc: int = 1) -> None:
    """CameraConfigError unless lo <= value <= hi and value is on the lo + k*inc grid."""
    if not lo <= value <= hi:
        raise CameraConfigError(
            f"{setting}: {feature}={value} is out of the camera's range [{lo}, {hi}]"
        )
    if inc > 1 and (value - lo) % inc:
        below = value - (value - lo) % inc
        raise CameraConfigError(
            f"{setting}: {feature}={value} does not fit the camera's increment of {inc} "
            f"(nearest valid: {below} or {below + inc})"
        )


def check_float(setting: str, feature: str, value: float, lo: float, hi: float) -> None:
    """CameraConfigError unless lo <= value <= hi."""
    if not lo <= value <= hi:
        raise CameraConfigError(
            f"{setting}: {feature}={value:g} is out of the camera's range [{lo:g}, {hi:g}]"
        )
