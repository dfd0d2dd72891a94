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
from edge.manifest import MODEL_OUTPUTS
from trainer.errors import ExportError
from trainer.model import InspectionModel

log = logging.getLogger(__name__)

OPSET = 18
INPUT_NAME = "image"
SCORE_RTOL = 1e-4


def export_onnx(model: InspectionModel, sample: np.ndarray, path: Path) -> None:
    """Write the model as ONNX (dynamic batch) and prove ONNX Runtime agrees with torch on
    `sample` (N, C, H, W): scores within SCORE_RTOL, maps within a small absolute tolerance."""
    model = model.eval().cpu()
    example = torch.from_numpy(sample[:1])
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings(), _quiet("torch.onnx", "onnxscript", "onnx_ir"):
        warnings.simplefilter("ignore")  # the exporter's chatter about optional torchvision ops
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(MODEL_OUTPUTS),
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    # One self-contained file: the edge runtime hashes and loads exactly one model file.
    program.save(str(path), external_data=False)
    check_parity(model, sample, path)


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
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
    SCORE_RTOL."""
    with torch.no_grad():
        want = [t.numpy() for t in model(torch.from_numpy(sample))]
    got = OnnxRuntimeBackend(path).run(sample)
    rel = float(np.max(np.abs(got.score - want[2]) / np.maximum(np.abs(want[2]), 1e-12)))
    map_err = float(np.max(np.abs(got.anomaly_map - want[1])))
    log.info("export parity: score rel diff %.2e, map abs diff %.2e", rel, map_err)
    recon = got.reconstruction
    if rel > SCORE_RTOL or map_err > 1e-4 or recon is None or recon.shape != want[0].shape:
        raise ExportError(
            f"ONNX Runtime disagrees with torch: score rel diff {rel:.2e} (limit {SCORE_RTOL}), "
            f"map abs diff {map_err:.2e}"
        )
    return rel
