"""The engine manifest: what an engine bundle contains and how to run it (DESIGN.md,
"Engine bundle").

Strict models: unknown keys are rejected, so a bundle from a newer trainer fails loudly instead of
being half understood.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FORMAT_VERSION = 1
# The DAE graph's outputs: these three always; engines exported since the heatmap classifier
# also give the encoder's activations ("features", N x Cf x H/4 x W/4) for its CNN features.
MODEL_OUTPUTS = ("reconstruction", "anomaly_map", "score")
FEATURES_OUTPUT = "features"
DAE_OUTPUTS = (*MODEL_OUTPUTS, FEATURES_OUTPUT)
# The heatmap classifier's graph: one input, three outputs (edge.stages.classify).
CLASSIFIER_INPUT = "features"
# The layout of the heatmap classifier's feature vector (edge.heatmap_features): a bundle whose
# classifier was trained on another is refused before its manifest is even validated, with a
# message that says to re-run `partsight-train classify` (edge.bundle).
FEATURE_VERSION = 3
CLASSIFIER_OUTPUTS = ("nuisance_probability", "ood_distance", "envelope_excess")
FeatureSet = Literal["hu", "residual", "cnn", "both", "all"]
# Each feature set's groups, in the order the vector holds them (edge.heatmap_features).
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "hu": ("hu",),
    "residual": ("residual",),
    "cnn": ("cnn",),
    "both": ("hu", "cnn"),
    "all": ("hu", "residual", "cnn"),
}


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

    def takes(self, height: int, width: int) -> bool:
        """Whether frames of height x width px are ones this engine judges (`geometry`)."""
        if self.geometry == "resized":
            low = self.min_source_side or 1
            return low <= height <= self.source_height and low <= width <= self.source_width
        return (height, width) == (self.source_height, self.source_width)

    def sizes_taken(self) -> str:
        """The frame sizes `takes` accepts, in words: "HxW", or the ranges when resized."""
        if self.geometry == "resized":
            low = self.min_source_side or 1
            return (
                f"heights of {low}..{self.source_height} px and widths of "
                f"{low}..{self.source_width} px"
            )
        return f"{self.source_height}x{self.source_width}"


class ModelSpec(_Strict):
    file: str = Field(description="ONNX file, relative to the bundle")
    format: Literal["onnx"] = "onnx"
    opset: int = Field(ge=17)
    input_name: str
    outputs: tuple[str, ...] = Field(
        MODEL_OUTPUTS,
        description=f"output names, in order: {MODEL_OUTPUTS}, or with the encoder's "
        f"activations {DAE_OUTPUTS}",
    )

    @field_validator("outputs")
    @classmethod
    def _known_outputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value not in (MODEL_OUTPUTS, DAE_OUTPUTS):
            raise ValueError(f"expected {MODEL_OUTPUTS} or {DAE_OUTPUTS}")
        return value

    @property
    def has_features(self) -> bool:
        """The graph gives the encoder's activations (what CNN features are pooled from)."""
        return FEATURES_OUTPUT in self.outputs


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
    expected_nuisance_probability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="for an anomalous sample of an engine with a classifier: its P(nuisance)",
    )
    expected_ood_distance: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="and its out-of-distribution distance"
    )
    expected_envelope_excess: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="and its envelope excess"
    )


class FileEntry(_Strict):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class OodGuard(_Strict):
    """The out-of-distribution guard (edge.stages.decide): the largest value each quantity took
    on the labelled nuisances (the score and area on every labelled nuisance part, the distance
    and excess on the regions the classifier learnt from). A part beyond `margin` times any of
    them is never passed, whatever the classifier says."""

    score_max: float = Field(gt=0, allow_inf_nan=False, description="highest anomaly score")
    area_max: float = Field(
        gt=0, allow_inf_nan=False, description="largest anomalous region, model-input pixels"
    )
    distance_max: float = Field(
        gt=0,
        allow_inf_nan=False,
        description="largest nearest-neighbour distance of a labelled nuisance to the others "
        "(leave its part out), in the classifier graph's `ood_distance` units",
    )
    excess_max: float = Field(
        gt=0,
        allow_inf_nan=False,
        description="largest envelope excess of a labelled nuisance over the others' envelope "
        "(leave its part out), in the classifier graph's `envelope_excess` units",
    )
    margin: float = Field(
        ge=1,
        allow_inf_nan=False,
        description="how far beyond the labelled nuisances (as a multiple of the largest value "
        "they showed) an anomaly may lie and still be passed",
    )


class ClassifierTraining(_Strict):
    """What the classifier was trained on and how well it did (cross-validated)."""

    labelled: str = Field(description="the labelled folder it was trained on")
    per_type: int = Field(ge=1, description="labelled images asked for per type")
    seed: int
    images: dict[str, int] = Field(description="labelled images used, per type")
    defects: int = Field(ge=1, description="labelled defect images used")
    nuisances: int = Field(ge=1, description="labelled nuisance images used")
    temperature: float = Field(gt=0, description="probability calibration (temperature scaling)")
    cv_nuisance_pass_rate: float | None = Field(
        None, description="held-out folds: nuisances passed at pass_probability"
    )
    cv_defect_escape_rate: float | None = Field(
        None, description="held-out folds: defects passed at pass_probability"
    )


class ClassifierSpec(_Strict):
    """The heatmap classifier (paper §3.3): features of an anomalous part's map and image →
    an MLP → P(nuisance), judged by edge.stages.decide. Both files are hashed and verified
    like the rest of the bundle."""

    file: str = Field(description="the classifier's ONNX graph, relative to the bundle")
    reference_file: str = Field(
        description="the good parts' appearance (NumPy .npz, no pickle) the features compare to"
    )
    features: FeatureSet = Field(
        description="hu: Hu moments and region descriptors of the DAE map; residual: descriptors "
        "of the residual once the light change is undone; cnn: the DAE encoder's activations "
        "pooled over the anomalous region; both: hu and cnn; all: the three"
    )

    feature_version: int = Field(ge=1, description="layout of the feature vector (FEATURE_VERSION)")
    feature_count: int = Field(ge=1, description="length of the feature vector")
    opset: int = Field(ge=17)
    input_name: str = CLASSIFIER_INPUT
    outputs: tuple[str, ...] = CLASSIFIER_OUTPUTS
    pass_probability: float = Field(
        gt=0.5,
        le=1,
        description="an anomalous part is passed (OK, reason nuisance) when P(nuisance) >= this",
    )
    ood: OodGuard
    training: ClassifierTraining

    @field_validator("outputs")
    @classmethod
    def _known_outputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value != CLASSIFIER_OUTPUTS:
            raise ValueError(f"expected {CLASSIFIER_OUTPUTS}")
        return value

    @property
    def groups(self) -> tuple[str, ...]:
        """The feature groups the vector holds, in order (FEATURE_GROUPS)."""
        return FEATURE_GROUPS[self.features]

    @property
    def needs_activations(self) -> bool:
        """CNN features pool the DAE encoder's activations."""
        return "cnn" in self.groups

    @property
    def needs_reconstruction(self) -> bool:
        """Residual features read the DAE's reconstruction."""
        return "residual" in self.groups

    @property
    def files(self) -> tuple[str, str]:
        return (self.file, self.reference_file)


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
    classifier: ClassifierSpec | None = Field(None, description="optional heatmap classifier")
    validation: dict[str, float | int | None] = Field(default_factory=dict)
    golden: tuple[GoldenSample, ...] = ()
    trainer: dict[str, object] = Field(default_factory=dict, description="version and config")
    files: tuple[FileEntry, ...] = ()
