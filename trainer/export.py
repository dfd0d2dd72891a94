"""ONNX export of the inspection model, checked against torch with ONNX Runtime before it ships."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from edge.backends.onnxruntime import OnnxRuntimeBackend
from edge.manifest import DAE_OUTPUTS
from trainer.errors import ExportError
from trainer.model import InspectionModel

log = logging.getLogger(__name__)

OPSET = 18
INPUT_NAME = "image"
SCORE_RTOL = 1e-4
# Maps are compared relative to their scale (the largest value in the torch map): float32
# differences between the two runtimes grow with the values, and a map's values may be tens
# (per-pixel normalised) or thousandths (raw squared error).
MAP_RTOL = 1e-4


def export_onnx(model: InspectionModel, sample: np.ndarray, path: Path) -> None:
    """Write the model as ONNX (dynamic batch) and prove ONNX Runtime agrees with torch on
    `sample` (N, C, H, W): scores within SCORE_RTOL, maps within MAP_RTOL of their scale."""
    model = model.eval().cpu()
    example = torch.from_numpy(sample[:1])
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings(), quiet("torch.onnx", "onnxscript", "onnx_ir"):
        warnings.simplefilter("ignore")  # the exporter's chatter about optional torchvision ops
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(DAE_OUTPUTS),
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    # One self-contained file: the edge runtime hashes and loads exactly one model file.
    program.save(str(path), external_data=False)
    check_parity(model, sample, path)


@contextlib.contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Silence chatty loggers for the duration (the exporter logs every rewrite pass)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def check_parity(model: InspectionModel, sample: np.ndarray, path: Path) -> float:
    """Largest relative score difference between torch and ONNX Runtime; ExportError past
    SCORE_RTOL, or when the maps (or the encoder features) differ by more than MAP_RTOL of the
    torch values' largest magnitude (or a NaN appears in either)."""
    with torch.no_grad():
        want = [t.numpy() for t in model(torch.from_numpy(sample))]
    got = OnnxRuntimeBackend(path).run(sample)
    with np.errstate(invalid="ignore"):
        rel = float(np.max(np.abs(got.score - want[2]) / np.maximum(np.abs(want[2]), 1e-12)))
    map_err, scale = _difference(got.anomaly_map, want[1])
    feature_err, feature_scale = _difference(got.features, want[3])
    map_rel = map_err / max(scale, 1e-12)
    feature_rel = feature_err / max(feature_scale, 1e-12)
    log.info(
        "export parity: score rel diff %.2e, map diff %.2e on a map scale of %.3g (rel %.2e), "
        "features rel %.2e",
        rel, map_err, scale, map_rel, feature_rel,
    )  # fmt: skip
    agree = rel <= SCORE_RTOL and map_rel <= MAP_RTOL and feature_rel <= MAP_RTOL  # False: NaN
    recon = got.reconstruction
    if not agree or recon is None or recon.shape != want[0].shape:
        raise ExportError(
            f"ONNX Runtime disagrees with torch: score rel diff {rel:.2e} (limit {SCORE_RTOL}), "
            f"map diff {map_err:.2e} on a map scale of {scale:.3g}, features rel diff "
            f"{feature_rel:.2e} (limit {MAP_RTOL} of their scale)"
        )
    return rel


def _difference(got: np.ndarray | None, want: np.ndarray) -> tuple[float, float]:
    """(largest absolute difference, largest magnitude of `want`); NaN when either has a NaN
    or the shapes differ."""
    if got is None or got.shape != want.shape or not np.all(np.isfinite(want)):
        return float("nan"), float("nan")
    return float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
