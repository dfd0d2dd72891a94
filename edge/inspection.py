"""The engine's one result type: what edge.inspector.Inspector says about a part, read by the
daemon (edge.daemon.decide), `partsight inspect`, `partsight-train evaluate` and the MQTT
payload alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.regions import Region
from edge.stages.decide import ERROR, NOK, OK, Classification, DefectClass

if TYPE_CHECKING:
    from edge.registration import Pose

__all__ = ["ERROR", "NOK", "OK", "Inspection"]


@dataclass(frozen=True)
class Inspection:
    """One judged part.

    ``verdict``/``reason``: OK "" | OK "nuisance" | NOK "anomaly" | NOK "ood" |
    NOK "registration" | ERROR "classifier" (edge.stages.decide). ``defect_class`` and
    ``class_probability``: the heatmap classifier's class for an anomalous part and its
    calibrated probability (None without a classifier, below the threshold, or when it failed);
    ``classification`` its whole answer. ``detail``: why, for an ERROR."""

    verdict: str
    reason: str
    score: float | None  # None when the part could not be registered (never scored)
    threshold: float
    anomaly_map: np.ndarray | None  # (H, W) float32 at the model's resolution
    model_input: np.ndarray | None  # (C, H, W) float32, what the model saw (None: on the GPU)
    regions: list[Region] = field(default_factory=list)  # in frame coordinates
    latency_ms: dict[str, float] = field(default_factory=dict)
    pose: Pose | None = None  # where the part lay, when the engine registers
    confidence: float | None = None  # registration confidence in [0, 1]
    to_frame: np.ndarray | None = None  # 2x3 affine: model-input crop pixels → frame pixels
    defect_class: DefectClass | None = None
    class_probability: float | None = None
    classification: Classification | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in (OK, NOK, ERROR):
            raise ValueError(f"verdict must be OK, NOK or ERROR, got {self.verdict!r}")
