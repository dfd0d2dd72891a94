"""[engine] (the bundle and the inference backend, chosen by `kind`) and [registration]."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from edge.config.base import ConfigPath, ExistingPath, StrictModel, context_of


class OnnxRuntimeBackendConfig(StrictModel):
    """ONNX Runtime on the CPU: portable, and the reference the trainer checks exports with."""

    kind: Literal["onnxruntime"] = Field("onnxruntime", description="ONNX Runtime")
    threads: int = Field(0, ge=0, description="intra-op threads; 0: ONNX Runtime's default")


class TensorRtBackendConfig(StrictModel):
    """TensorRT on an NVIDIA GPU (a Jetson). The plan is built from the bundle's ONNX file on
    first use and cached per TensorRT version and GPU."""

    kind: Literal["tensorrt"] = Field("tensorrt", description="TensorRT")
    workspace_mb: int = Field(1024, ge=1, description="builder workspace limit, MiB")
    fp16: bool = Field(True, description="allow FP16 kernels (faster on Jetson; scores shift)")
    cache_dir: ConfigPath = Field(
        description="where built plans are cached; default: <state_dir>/cache/tensorrt"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_cache(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "cache_dir" not in data:
            data = {**data, "cache_dir": context_of(info).effective_state_dir() / "cache/tensorrt"}
        return data


BackendConfig = Annotated[
    OnnxRuntimeBackendConfig | TensorRtBackendConfig, Field(discriminator="kind")
]


class EngineConfig(StrictModel):
    path: ExistingPath = Field(
        description="the engine bundle folder (every file's hash is checked when the daemon "
        "loads it; signed .tar bundles come with engine signing)"
    )
    backend: BackendConfig = Field(
        default_factory=OnnxRuntimeBackendConfig,
        description="the inference backend, by kind: onnxruntime | tensorrt",
    )
    threshold: float | None = Field(
        None,
        allow_inf_nan=False,
        description="override the bundle's score threshold (score >= threshold is NOK); "
        "omitted: the bundle's own",
    )


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
