"""Registration's exceptions.

PartSightError (edge.errors)
└── RegistrationError      a frame that cannot be registered at all (wrong dtype, ndim, empty)
    ├── TemplateError      a template that cannot be built, saved or loaded (missing/corrupt files)
    └── DeviceUnavailable  device="cuda" asked for, but Numba's CUDA target is not usable here

"No part", "wrong part" and "part cut by the border" are NOT errors: they come back as a
Registration with a low confidence, which the pipeline turns into a NOK verdict.
"""

from __future__ import annotations

from edge.errors import PartSightError


class RegistrationError(PartSightError):
    """Input that registration cannot work on."""


class TemplateError(RegistrationError):
    """A registration template that cannot be built, saved or loaded."""


class DeviceUnavailable(RegistrationError):
    """The requested compute device (CUDA) cannot be used on this machine."""
