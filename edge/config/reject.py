"""[reject]: how a NOK part is thrown out, chosen by `kind`.

Only `none` exists so far (verdicts are published, nothing is driven). The reject-output work
turns RejectConfig into a discriminated union with camera_line, gpio and modbus.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.base import StrictModel


class NoneRejectConfig(StrictModel):
    """No reject output: verdicts are published, parts are not thrown out."""

    kind: Literal["none"] = Field(description="none: no reject output is driven")


RejectConfig = NoneRejectConfig
