"""The verdict: what the pipeline decided about one part, and everything published with it.

Every part id the acquisition hands out ends in exactly one Verdict, whatever happened to the
part: judged by the engine, refused (camera fault, unusable image), dropped because the
pipeline was full, or out of time. A rejected part (NOK or ERROR) always carries a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.regions import Region
from edge.stages.decide import (
    ANOMALY,  # scored at or above the threshold (and classified a defect, with a classifier)
    CLASSIFIER,  # ERROR: the heatmap classifier could not judge an anomalous part
    ERROR,
    NOK,
    NUISANCE,  # OK: an anomaly the heatmap classifier passed as harmless
    OK,
    OOD,  # an anomaly unlike every nuisance the classifier learnt: never passed
    DefectClass,
)
from hw.frame import Grab

__all__ = [
    "ANOMALY", "CAMERA", "CLASSIFIER", "ERROR", "IMAGE", "INFERENCE", "NOK", "NUISANCE", "OK",
    "OOD", "OVERLOAD", "REGISTRATION", "TIMEOUT", "VERDICTS", "CameraInfo", "EngineInfo",
    "Verdict", "finite_or_none",
]  # fmt: skip

if TYPE_CHECKING:  # annotations only: no Numba or OpenCV import for a verdict
    from edge.backends import InferenceBackend
    from edge.bundle import Bundle
    from edge.monitor.frame_stats import FrameStats
    from edge.registration.pose import Pose

VERDICTS = (OK, NOK, ERROR)

# Reasons (result.schema.json lists them for consumers): ANOMALY, NUISANCE, OOD, CLASSIFIER
# above, and
REGISTRATION = "registration"  # the part could not be aligned to the template
CAMERA = "camera"  # no usable frame: failed buffer, timeout, camera gone
IMAGE = "image"  # a frame the engine cannot take (wrong size, channels, pixel type)
INFERENCE = "inference"  # the inference backend failed
TIMEOUT = "timeout"  # no verdict by the part's deadline (fail-safe)
OVERLOAD = "overload"  # the pipeline was full when the part arrived


@dataclass(frozen=True, kw_only=True)
class CameraInfo:
    """The camera's metadata for the frame a part was judged on."""

    frame_counter: int | None
    exposure_us: float | None
    gain_db: float | None

    @classmethod
    def from_grab(cls, grab: Grab) -> CameraInfo:
        return cls(
            frame_counter=grab.frame_counter, exposure_us=grab.exposure_us, gain_db=grab.gain_db
        )


@dataclass(frozen=True)
class EngineInfo:
    """The engine that judged a part: enough to tell two engines apart in the results."""

    name: str
    version: str
    model_sha256: str  # the model file's sha256, from the bundle's manifest
    backend: str  # the inference backend that really runs: onnxruntime | tensorrt
    precision: str  # fp32 | fp16

    @classmethod
    def of(cls, bundle: Bundle, backend: InferenceBackend) -> EngineInfo:
        """The engine an inspector runs: its bundle, and its backend after the golden samples
        (an FP16 plan that missed them has been replaced by FP32)."""
        manifest = bundle.manifest
        hashes = {entry.path: entry.sha256 for entry in manifest.files}
        model = hashes[manifest.model.file]
        return cls(manifest.name, manifest.version, model, backend.name, backend.precision)

    def __str__(self) -> str:
        return f"{self.name}@{self.version} (model {self.model_sha256[:12]}, {self.backend})"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    part_id: int
    verdict: str  # OK | NOK | ERROR
    reason: str  # "" only for a plain OK
    trigger_ns: int  # monotonic ns of the trigger (or of the frame's arrival, see Grab)
    trigger_wall: float  # wall-clock seconds at the same moment
    verdict_ns: int  # monotonic ns when the verdict was decided
    verdict_wall: float
    score: float | None = None  # None when the part was not scored
    threshold: float | None = None
    regions: tuple[Region, ...] = ()
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    camera: CameraInfo | None = None
    engine: EngineInfo | None = None
    defect_class: DefectClass | None = None  # the heatmap classifier's class
    class_probability: float | None = None
    confidence: float | None = None  # registration confidence, when the engine registers
    pose: Pose | None = None  # where registration found the part (frame pixels, degrees)
    frame: FrameStats | None = None  # brightness, contrast, focus of the frame (the monitor's)
    source: str | None = None  # the image file, for a replayed frame
    detail: str = ""  # a human-readable why (the camera's or the engine's message), for logs

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.verdict != OK and not self.reason:
            raise ValueError(f"a {self.verdict} verdict needs a reason (part {self.part_id})")

    @property
    def rejected(self) -> bool:
        """True for NOK and ERROR: the part is thrown out (fail-safe)."""
        return self.verdict != OK

    @property
    def total_ms(self) -> float:
        """Trigger to verdict, milliseconds."""
        return max(0.0, (self.verdict_ns - self.trigger_ns) / 1e6)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such a value is published as unknown."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)
