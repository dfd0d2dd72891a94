"""The engine manifest: what an engine bundle contains and how to run it (DESIGN.md,
"Engine bundle").

Strict models: unknown keys are rejected, so a bundle from a newer trainer fails loudly instead of
being half understood.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = 1
MODEL_OUTPUTS = ("reconstruction", "anomaly_map", "score")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """The model's input and how a stored image becomes it.

    Two geometries (README, "Image sizes"):
    - `fixed`: every frame is source_height x source_width (a camera with one ROI, or the
      frame the registered crop is cut from) and is resized to height x width for the model.
    - `resized`: the engine learnt from images of several sizes, each resized to height x width
      (its aspect ratio changed: the trainer says by how much); a frame is resized the same
      way if each side lies within [min_source_side, source_height or source_width], else it
      is refused.
    """

    channels: Literal[1, 3] = Field(description="1 = mono, 3 = colour (BGR order as stored)")
    height: int = Field(gt=0, description="model input height in pixels")
    width: int = Field(gt=0, description="model input width in pixels")
    source_height: int = Field(
        gt=0, description="fixed: the frame height the engine takes; resized: the largest"
    )
    source_width: int = Field(
        gt=0, description="fixed: the frame width the engine takes; resized: the largest"
    )
    geometry: Literal["fixed", "resized"] = Field(
        "fixed", description="fixed: one frame size; resized: any size within the range"
    )
    min_source_side: int | None = Field(
        None, gt=0, description="resized: the smallest frame height or width the engine takes"
    )
    normalization: Literal["dtype_max"] = Field(
        "dtype_max",
        description="pixel / 255 for 8-bit, / 65535 for 16-bit (after bit_depth), giving [0, 1]",
    )
    bit_depth: Literal[8, 10, 12, 14, 16] = Field(
        16,
        description="significant bits of the training images' values: 8 for 8-bit images; for "
        "16-bit ones 10, 12 or 14 when no value exceeded 1023, 4095 or 16383. A 16-bit image "
        "file is read as data of this depth and shifted up to 16 bits (edge.bit_depth), as a "
        "camera delivers Mono10/Mono12",
    )


class ModelSpec(_Strict):
    file: str = Field(description="ONNX file, relative to the bundle")
    format: Literal["onnx"] = "onnx"
    opset: int = Field(ge=17)
    input_name: str
    outputs: tuple[str, ...] = Field(MODEL_OUTPUTS, description="output names, in order")


class ScoringSpec(_Strict):
    """How the graph turns reconstruction error into a score. The threshold lives here, not in
    the graph, so it can be tuned on the line without re-exporting."""

    method: Literal["mean", "max", "topk"] = Field(description="image score from the anomaly map")
    topk_fraction: float | None = Field(None, gt=0, le=1, description="for method topk")
    smoothing_sigma: float = Field(ge=0, description="Gaussian smoothing of the map, pixels")
    normalization: Literal["per_pixel", "none"] = Field(
        description="per_pixel: the map is in units of good parts' per-pixel error spread"
    )
    mask_file: str | None = Field(None, description="foreground mask baked into the graph (PNG)")
    threshold: float = Field(allow_inf_nan=False, description="score >= threshold is NOK")
    threshold_rule: str = Field(description="how the threshold was chosen")
    pixel_threshold: float = Field(
        allow_inf_nan=False, description="map level above which a pixel is anomalous"
    )


class RegistrationSpec(_Strict):
    """The Generalized Hough Transform template the frames are aligned to before scoring."""

    directory: str = Field(description="folder of the template files, relative to the bundle")
    files: tuple[str, ...] = Field(description="the template files, relative to the bundle")
    min_confidence: float = Field(
        ge=0, le=1, description="below this registration confidence a part is NOK 'registration'"
    )


class GoldenSample(_Strict):
    file: str = Field(description="image, relative to the bundle")
    expected_score: float = Field(allow_inf_nan=False)
    rtol: float = Field(1e-3, gt=0, description="relative tolerance a backend must meet")


class FileEntry(_Strict):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(_Strict):
    format_version: Literal[1] = 1
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", description="semver")
    created: str = Field(description="ISO 8601 UTC")
    input: InputSpec
    model: ModelSpec
    scoring: ScoringSpec
    registration: RegistrationSpec | None = Field(
        None, description="registration template; None for pre-aligned images"
    )
    classifier: dict[str, str] | None = Field(None, description="optional heatmap classifier")
    validation: dict[str, float | int | None] = Field(default_factory=dict)
    golden: tuple[GoldenSample, ...] = ()
    trainer: dict[str, object] = Field(default_factory=dict, description="version and config")
    files: tuple[FileEntry, ...] = ()
