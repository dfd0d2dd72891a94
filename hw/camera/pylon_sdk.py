"""Loading pypylon lazily: only a configuration that asks for a Basler camera needs it."""

from __future__ import annotations

from types import ModuleType

from hw.errors import CameraConfigError

INSTALL_HINT = (
    "pip install pypylon (the wheel bundles the pylon runtime; on a Jetson use the aarch64 wheel)"
)


def load_pylon() -> tuple[ModuleType, ModuleType]:
    """pypylon's (pylon, genicam) modules, or CameraConfigError saying what to install."""
    try:
        from pypylon import genicam, pylon
    except ImportError as exc:
        raise CameraConfigError(
            f"camera kind 'basler' needs pypylon, which cannot be imported ({exc}): {INSTALL_HINT}"
        ) from exc
    return pylon, genicam


def short_message(exc: BaseException) -> str:
    """A GenICam exception's message without the file/line trailer pylon appends."""
    return str(exc).split(" : ", 1)[0].strip() or type(exc).__name__
