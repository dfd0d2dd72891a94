"""[engine] (the bundle and the inference backend, chosen by `kind`) and [registration]."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from edge.config.base import ConfigPath, ExistingDir, ExistingPath, StrictModel, context_of


class OnnxRuntimeSettings(StrictModel):
    """ONNX Runtime's settings (kind = "onnxruntime", or [engine.backend.onnxruntime] under
    kind = "auto")."""

    threads: int = Field(0, ge=0, description="intra-op threads; 0: ONNX Runtime's default")


class OnnxRuntimeBackendConfig(OnnxRuntimeSettings):
    """ONNX Runtime on the CPU: portable, and the reference the trainer checks exports with."""

    kind: Literal["onnxruntime"] = Field("onnxruntime", description="ONNX Runtime")


class TensorRtSettings(StrictModel):
    """TensorRT's settings (kind = "tensorrt", or [engine.backend.tensorrt] under
    kind = "auto"). The plan is built from the bundle's ONNX file on first use (or ahead of
    time by `partsight engine build`) and cached per ONNX file, TensorRT version, GPU and
    precision."""

    workspace_mb: int = Field(1024, ge=1, description="builder workspace limit, MiB")
    fp16: bool = Field(
        True,
        description="build an FP16 plan where the GPU has fast FP16; it is kept only if the "
        "golden samples still pass (within 1 %, or their own rtol if larger), else FP32",
    )
    max_batch: int = Field(
        8, ge=1, le=64, description="largest batch the plan takes (the daemon sends 1)"
    )
    cache_dir: ConfigPath = Field(
        description="where built plans are cached; default: <state_dir>/cache/tensorrt"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_cache(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "cache_dir" not in data:
            data = {**data, "cache_dir": context_of(info).effective_state_dir() / "cache/tensorrt"}
        return data


class TensorRtBackendConfig(TensorRtSettings):
    """TensorRT on an NVIDIA GPU (a Jetson). Without TensorRT or a GPU the daemon does not
    start (exit 2): it never falls back to a CPU that would miss every deadline."""

    kind: Literal["tensorrt"] = Field("tensorrt", description="TensorRT")


class AutoBackendConfig(StrictModel):
    """TensorRT when it can be imported and Numba sees a CUDA GPU, else ONNX Runtime; the
    choice is logged and published on the retained `engine` topic."""

    kind: Literal["auto"] = Field("auto", description="TensorRT if usable, else ONNX Runtime")
    tensorrt: TensorRtSettings = Field(description="settings used when TensorRT is chosen")
    onnxruntime: OnnxRuntimeSettings = Field(
        description="settings used when ONNX Runtime is chosen"
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # Filled in as tables so they are validated with the loader's context (state_dir).
        if isinstance(data, dict):
            data = {"tensorrt": {}, "onnxruntime": {}, **data}
        return data


BackendConfig = Annotated[
    OnnxRuntimeBackendConfig | TensorRtBackendConfig | AutoBackendConfig,
    Field(discriminator="kind"),
]


class EngineConfig(StrictModel):
    """Which engine judges the parts: one bundle folder (`path`), or the engine store's active
    engine (`store = true`), which technicians change with `partsight engine ...` and the
    daemon follows on `systemctl reload` or an MQTT command, without a restart."""

    path: ExistingPath | None = Field(
        None,
        description="an engine bundle folder (every file's hash is checked when the daemon "
        "loads it); exclusive with store",
    )
    store: bool = Field(
        False,
        description="run the engine store's active engine (<state_dir>/engines, managed with "
        "`partsight engine install/activate/rollback`); exclusive with path",
    )
    trusted_keys: ExistingDir | None = Field(
        None,
        description="folder of the public keys (*.pub, one per file) that engine signatures "
        "are checked against; required with store = true; with path, that folder must then "
        "carry a valid manifest.sig too",
    )
    backend: BackendConfig = Field(
        default_factory=OnnxRuntimeBackendConfig,
        description="the inference backend, by kind: onnxruntime | tensorrt | auto",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="override the bundle's score threshold (score >= threshold is NOK), only "
        "with path; omitted: the bundle's own",
    )
    pass_probability: float | None = Field(
        None,
        gt=0.5,
        le=1.0,
        description="override the heatmap classifier's pass probability: an anomalous part is "
        "passed (OK, reason nuisance) when P(nuisance) >= this; omitted: the bundle's own. "
        "Only for an engine with a classifier (the daemon refuses to start otherwise)",
    )
    ood_margin: float | None = Field(
        None,
        ge=1.0,
        allow_inf_nan=False,
        description="override the classifier's out-of-distribution margin: an anomaly beyond "
        "this multiple of the largest score, region area, feature distance or envelope excess "
        "its labelled nuisances showed is never passed; omitted: the bundle's own. Only for an "
        "engine with a classifier",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EngineConfig:
        if self.path is not None and self.store:
            raise ValueError("set either path (an engine folder) or store = true, not both")
        if self.path is None and not self.store:
            raise ValueError("set path (an engine folder) or store = true (the engine store)")
        if self.store and self.trusted_keys is None:
            raise ValueError(
                "store = true needs trusted_keys (the folder of public keys that engine "
                "signatures are checked against)"
            )
        if self.store and self.threshold is not None:
            raise ValueError(
                "threshold overrides one engine's own; with store = true every engine brings "
                "its own threshold (drop threshold, or use path)"
            )
        return self


class RegistrationConfig(StrictModel):
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where the Hough transform runs; auto: CUDA when usable, else CPU"
    )
    min_confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="a part registered with less confidence is NOK (reason 'registration'); "
        "omitted: the bundle's own",
    )
