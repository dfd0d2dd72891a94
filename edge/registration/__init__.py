"""Registration: align every frame to a template with a Generalized Hough Transform.

Numba on the CPU (parallel) or Numba-CUDA, same integer votes on both; see ``registrar`` for
the algorithm and ``pose`` for the pose convention.
"""

from edge.registration.errors import DeviceUnavailable, RegistrationError, TemplateError
from edge.registration.pose import Pose, Registration, template_to_frame
from edge.registration.registrar import Registrar
from edge.registration.template import Template

__all__ = [
    "DeviceUnavailable",
    "Pose",
    "Registrar",
    "Registration",
    "RegistrationError",
    "Template",
    "TemplateError",
    "template_to_frame",
]
