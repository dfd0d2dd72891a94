"""The hardware layer's exceptions.

HardwareError
├── CameraError               the camera could not deliver a frame
│   ├── CameraTimeout         no frame within the grab timeout (no trigger, camera not ready)
│   ├── CameraDisconnected    the camera is absent, was removed, or is in a state only reopening
│   │                         fixes; ReconnectingCamera reopens it with back-off
│   ├── CameraConfigError     the settings do not fit the camera (or its SDK is not installed);
│   │                         the message names the setting and the camera feature
│   └── EndOfStream           a replay camera ran out of images (loop off): a clean end, not a
│                             fault, so it is neither retried nor reconnected
├── OutputError               a reject output could not be driven
└── ImageFileError            an image file that cannot be read (hw.camera.image_file, the reader
    │                         every entry point shares): names the file and says why in one line
    └── ImageTooLarge         its header declares more pixels than allowed: refused undecoded

Vendor exceptions (pypylon's genicam errors, gpiod, pymodbus) never leave hw/: each adapter maps
them here, with the vendor exception chained as the cause. A failed or incomplete camera buffer
is not an exception: it comes back as a Grab with `error` set, so the part it belongs to still
gets a verdict (ERROR, reason "camera").
"""

from __future__ import annotations


class HardwareError(Exception):
    """Base of every error hw/ raises on purpose."""


class CameraError(HardwareError):
    """The camera could not deliver a frame."""


class CameraTimeout(CameraError):
    """No frame arrived within the grab timeout."""


class CameraDisconnected(CameraError):
    """The camera is absent, was removed, or must be reopened before it can grab again."""


class CameraConfigError(CameraError):
    """The camera settings are invalid for this camera, or the camera's SDK is missing."""


class EndOfStream(CameraError):
    """A replay camera delivered its last image and does not loop."""


class OutputError(HardwareError):
    """A reject output could not be driven."""


class ImageFileError(HardwareError):
    """An image file that cannot be read. `path` names it, `why` says why in one line."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


class ImageTooLarge(ImageFileError):
    """An image file whose header declares more pixels than the reader may decode."""
