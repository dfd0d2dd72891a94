"""`partsight-train fit`: good images in, a verified engine bundle out.

Steps: read train/good → pre-checks (bit depth, variation, size: trainer.precheck) → model
inputs (the edge runtime's own preprocessing) → hold out a validation split → train the DAE →
export ONNX (parity-checked) → score the validation split with ONNX Runtime → threshold → golden
samples → manifest → reload the bundle and re-check it. The bundle is built in `<out>.partial/`,
which replaces `out` only once it checks out and is removed if anything fails.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch

from edge import __version__ as edge_version
from edge.backends.onnxruntime import OnnxRuntimeBackend
from edge.bit_depth import stored_bits, to_full_scale
from edge.bundle import write_manifest
from edge.inspector import Inspector
from edge.manifest import (
    DAE_OUTPUTS,
    GoldenSample,
    InputSpec,
    Manifest,
    ModelSpec,
    RegistrationSpec,
    ScoringSpec,
)
from edge.monitor.baseline import validation_figures
from edge.preprocess import check_image, to_model_input
from trainer.alignment import Aligned, align_training_set, poses_vary
from trainer.checkpoint import save_checkpoint
from trainer.dataset import Dataset, read_uniform
from trainer.engine_output import check_engine_output, replace_with
from trainer.errors import DatasetError, TrainerError
from trainer.export import INPUT_NAME, OPSET, export_onnx
from trainer.foreground import auto_foreground
from trainer.model import (
    DAEConfig,
    DenoisingAutoencoder,
    InspectionModel,
    PixelStats,
    ScoreMethod,
    ScoringHead,
)
from trainer.precheck import BitDepth, check_input_size, check_variation, detect_bit_depth
from trainer.synthetic_anomalies import paste_anomaly
from trainer.threshold import (
    DEFAULT_RULE,
    parse_rule,
    threshold_from_good,
    threshold_from_labels,
)
from trainer.train import TrainConfig, train_dae

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
MASK_FILE = "foreground.png"
TEMPLATE_DIR = "registration"
GOLDEN_COUNT = 3
MIN_TRAIN_IMAGES = 8
RESIZED_SIZE = (128, 128)  # (H, W) of the model when the training images differ in size


@dataclass(frozen=True)
class FitConfig:
    size: tuple[int, int] | None = None  # model input (H, W); None = the images' own size, or
    # RESIZED_SIZE when they come in several sizes (trainer.fit.size_policy)
    bit_depth: int | None = None  # of 16-bit images' values; None = detected (trainer.precheck)
    model: DAEConfig = field(default_factory=DAEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score_method: ScoreMethod = "topk"
    topk_fraction: float = 0.005
    smoothing_sigma: float = 4.0
    per_pixel: bool = True  # normalise the map by good parts' per-pixel error statistics
    register: str = "auto"  # auto: when labels.csv has poses to undo | on | off
    registration_device: str = "auto"
    min_confidence: float = 0.5
    mask: str = "none"  # "auto": score only the part (aligned data on a distinct background)
    validation_fraction: float = 0.15
    threshold_rule: str = DEFAULT_RULE
    val_data: Path | None = None  # labelled data (MVTec layout, its test/) for an F1 threshold
    name: str = "engine"
    version: str = "0.1.0"
    checkpoint: Path | None = None
    show_progress: bool = True


@dataclass(frozen=True)
class FitResult:
    engine: Path
    threshold: float
    threshold_rule: str
    losses: list[float]
    seconds: float
    train_images: int  # the model learnt on these
    val_images: int  # the threshold was set on these
    bit_depth: BitDepth
    train_seconds: float  # the training loop alone
    device: str  # where the DAE was trained (and its mixed precision, if any)
    train_files: tuple[str, ...] = ()  # dataset-relative paths the model learnt from
    val_files: tuple[str, ...] = ()  # the held-out good images that set the threshold


def fit(data: Path, out: Path, config: FitConfig) -> FitResult:
    """Train an engine on `data`/train/good and write its bundle to `out`. DatasetError or
    TrainerError (one line) when it cannot; `<out>.partial/` never outlives a failure."""
    try:
        return _fit(data, out, config)
    except BaseException:
        shutil.rmtree(_staging(out), ignore_errors=True)
        raise


def _staging(out: Path) -> Path:
    """Where the bundle is built before it replaces `out`."""
    return out.with_name(out.name + ".partial")


def _fit(data: Path, out: Path, config: FitConfig) -> FitResult:
    started = time.perf_counter()
    check_engine_output(out, [data])  # before hours of training, not after
    dataset = Dataset.load(data)
    if len(dataset.train) < MIN_TRAIN_IMAGES:
        raise DatasetError(
            f"{data}/train/good: {len(dataset.train)} images, need {MIN_TRAIN_IMAGES}"
        )
    raw = read_uniform(dataset, dataset.train, one_size=False)
    where = f"{data}/train/good"
    check_variation(raw, where)
    depth = detect_bit_depth(raw, config.bit_depth, where)
    log.info("fit: %s", depth.note)
    raw = [to_full_scale(im, depth.bits, where) for im in raw]
    aligned = None
    if config.register == "on" or (config.register == "auto" and poses_vary(dataset.root)):
        aligned = align_training_set(
            raw, config.registration_device, config.min_confidence, config.show_progress
        )
    crops = aligned.crops if aligned else raw
    items = [dataset.train[i] for i in aligned.kept] if aligned else dataset.train
    spec = size_policy(raw, crops, config.size, depth.bits, where)
    check_input_size(spec.height, spec.width, config.model, config.smoothing_sigma, where)
    inputs = np.stack([to_model_input(im, spec) for im in crops])
    train_idx, val_idx = split_indices(len(inputs), config.validation_fraction, config.train.seed)
    log.info(
        "fit: %d training / %d validation images at %dx%d (HxW)",
        len(train_idx),
        len(val_idx),
        spec.height,
        spec.width,
    )

    model_config = DAEConfig(**{**config.model.as_dict(), "in_channels": spec.channels})
    result = train_dae(
        inputs[train_idx], model_config, config.train, show_progress=config.show_progress
    )
    if config.checkpoint:
        save_checkpoint(result.model, config.checkpoint)

    staging = _staging(out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    stats = _pixel_stats(result.model, inputs[train_idx], config) if config.per_pixel else None
    mask = _foreground(aligned, inputs[train_idx], spec, config)
    if mask is not None:
        cv2.imwrite(str(staging / MASK_FILE), mask)
    registration = _save_template(aligned, staging, config) if aligned else None
    head = ScoringHead(
        config.score_method,
        config.smoothing_sigma,
        None if mask is None else torch.from_numpy(mask > 0),
        config.topk_fraction,
        stats,
    )
    export_onnx(InspectionModel(result.model, head), inputs[val_idx[:4]], staging / MODEL_FILE)

    backend = OnnxRuntimeBackend(staging / MODEL_FILE)
    val_scores, val_maps = _score(backend, inputs[val_idx])
    if not np.all(np.isfinite(val_scores)):
        raise TrainerError(
            "the model scores the validation images as nan/inf: training diverged "
            "(try a lower --lr)"
        )
    threshold, rule = _threshold(val_scores, inputs[val_idx], config, spec, backend, aligned)
    golden = _golden(
        dataset,
        [items[i] for i in val_idx[:GOLDEN_COUNT]],
        val_scores[:GOLDEN_COUNT],
        staging,
    )
    manifest = Manifest(
        name=config.name,
        version=config.version,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        input=spec,
        model=ModelSpec(file=MODEL_FILE, opset=OPSET, input_name=INPUT_NAME, outputs=DAE_OUTPUTS),
        registration=registration,
        scoring=ScoringSpec(
            method=config.score_method,
            topk_fraction=config.topk_fraction if config.score_method == "topk" else None,
            smoothing_sigma=config.smoothing_sigma,
            normalization="per_pixel" if config.per_pixel else "none",
            mask_file=None if mask is None else MASK_FILE,
            threshold=threshold,
            threshold_rule=rule,
            # Regions are drawn where a pixel is beyond anything seen on good validation parts.
            pixel_threshold=float(np.quantile(val_maps, 0.9999)),
        ),
        validation={
            "good_images": len(val_idx),
            "good_score_mean": float(val_scores.mean()),
            "good_score_std": float(val_scores.std(ddof=1)),
            "good_score_max": float(val_scores.max()),
            "final_train_loss": result.losses[-1],
            # the metrics monitor's good-part baselines: frame statistics, poses (edge.monitor)
            **validation_figures(
                raw, aligned.poses if aligned else (), aligned.confidences if aligned else ()
            ),
        },
        golden=tuple(golden),
        trainer={
            "version": edge_version,
            "torch": torch.__version__,
            "device": result.device,
            "amp": result.amp,
            "data": str(data),
            "train_images": len(train_idx),
            "model": model_config.as_dict(),
            "train": config.train.as_dict(),
        },
    )
    payload = [MODEL_FILE, *(g.file for g in golden), *([MASK_FILE] if mask is not None else [])]
    payload += list(registration.files) if registration else []
    write_manifest(staging, manifest, payload)
    # The bundle must load and reproduce its own golden scores before it replaces anything.
    Inspector.open(staging).check_golden()
    replace_with(staging, out)
    seconds = time.perf_counter() - started
    log.info("fit: engine written to %s in %.1f s (threshold %.6g)", out, seconds, threshold)
    device = result.device if result.amp is None else f"{result.device} ({result.amp})"
    return FitResult(
        out, threshold, rule, result.losses, seconds, len(train_idx), len(val_idx), depth,
        result.seconds, device, tuple(items[i].file for i in train_idx),
        tuple(items[i].file for i in val_idx),
    )  # fmt: skip


def size_policy(
    frames: Sequence[np.ndarray],
    crops: Sequence[np.ndarray],
    size: tuple[int, int] | None,
    bit_depth: int,
    where: str,
) -> InputSpec:
    """How frames of `frames`' sizes become the model's input (README, "Image sizes").

    One frame size: the engine takes frames of exactly that size (geometry "fixed"); the model
    sees `crops` (the registered windows, or the frames themselves) resized to `size`, by
    default their own size. Several sizes (regions of interest cut from a line camera, a
    dataset gathered from several set-ups): every image is resized to `size` (default
    RESIZED_SIZE), and the log says how much that changes the aspect ratios; at run time a frame
    is resized the same way if each side lies within half the smallest and twice the largest
    training side, and refused otherwise (geometry "resized"). Resizing was measured against
    judging each image at its own scale on the magnetic tiles and won (README); a model trained
    on one frame grid also keeps the per-pixel error statistics meaningful.

    Registration needs one frame size: DatasetError otherwise."""
    channels = 1 if frames[0].ndim == 2 else 3
    heights = np.array([f.shape[0] for f in frames])
    widths = np.array([f.shape[1] for f in frames])
    if len({f.shape[:2] for f in frames}) == 1:
        model_h, model_w = size or crops[0].shape[:2]
        return InputSpec(
            channels=channels, height=model_h, width=model_w,
            source_height=int(heights[0]), source_width=int(widths[0]), bit_depth=bit_depth,
        )  # fmt: skip
    if crops is not frames:
        raise DatasetError(f"{where}: images of several sizes cannot be registered (one needed)")
    model_h, model_w = size or RESIZED_SIZE
    aspect = (widths / heights) / (model_w / model_h)
    stretch = float(np.max(np.maximum(aspect, 1 / aspect)) - 1)
    log.warning(
        "fit: %d images of %d sizes (H %d..%d, W %d..%d px): each is resized to %dx%d (HxW), "
        "which changes their aspect ratio by up to %.0f %%; frames are resized the same way on "
        "the line",
        len(frames), len({f.shape[:2] for f in frames}), heights.min(), heights.max(),
        widths.min(), widths.max(), model_h, model_w, 100 * stretch,
    )  # fmt: skip
    return InputSpec(
        channels=channels, height=model_h, width=model_w,
        source_height=int(2 * heights.max()), source_width=int(2 * widths.max()),
        geometry="resized", min_source_side=max(1, int(min(heights.min(), widths.min()) // 2)),
        bit_depth=bit_depth,
    )  # fmt: skip


def _pixel_stats(model: DenoisingAutoencoder, images: np.ndarray, config: FitConfig) -> PixelStats:
    """Per-pixel error statistics on (up to 256) training images. The validation split stays
    untouched, so the threshold is set on parts the model and the statistics never saw."""
    head = ScoringHead(config.score_method, config.smoothing_sigma)
    maps = []
    with torch.inference_mode():
        for start in range(0, min(len(images), 256), 32):
            batch = torch.from_numpy(images[start : start + 32])
            maps.append(head.error_map(batch, model(batch)))
    return PixelStats.from_maps(torch.cat(maps))


def split_indices(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of `count` training images: a seeded random hold-out of
    `fraction` of them (at least 4) that sets the threshold."""
    order = np.random.default_rng(seed).permutation(count)
    n_val = max(4, round(count * fraction))
    return np.sort(order[n_val:]), order[:n_val]


def _score(backend: OnnxRuntimeBackend, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, maps = [], []
    for start in range(0, len(inputs), 16):
        out = backend.run(inputs[start : start + 16])
        scores.append(out.score)
        maps.append(out.anomaly_map)
    return np.concatenate(scores), np.concatenate(maps)


def _foreground(
    aligned: Aligned | None, inputs: np.ndarray, spec: InputSpec, config: FitConfig
) -> np.ndarray | None:
    """The scored area: the template's silhouette when registering, else the optional automatic
    mask, at the model's resolution."""
    if aligned is not None:
        mask = aligned.template.mask
        return cv2.resize(mask, (spec.width, spec.height), interpolation=cv2.INTER_NEAREST)
    return auto_foreground(inputs) if config.mask == "auto" else None


def _save_template(aligned: Aligned, staging: Path, config: FitConfig) -> RegistrationSpec:
    files = aligned.template.save(staging / TEMPLATE_DIR)
    return RegistrationSpec(
        directory=TEMPLATE_DIR,
        files=tuple(f"{TEMPLATE_DIR}/{name}" for name in files),
        min_confidence=config.min_confidence,
    )


def with_synthetic_anomalies(inputs: np.ndarray, seed: int) -> np.ndarray:
    """float32 (N, C, H, W) model inputs, each with one synthetic anomaly pasted in (its texture
    lent by the next image): deterministic per seed."""
    rng = np.random.default_rng(seed + 7919)
    donors = np.roll(inputs, 1, axis=0)
    return np.stack(
        [paste_anomaly(im, donor, rng)[0] for im, donor in zip(inputs, donors, strict=True)]
    )


def _threshold(
    good_scores: np.ndarray,
    val_inputs: np.ndarray,
    config: FitConfig,
    spec: InputSpec,
    backend: OnnxRuntimeBackend,
    aligned: Aligned | None,
) -> tuple[float, str]:
    if config.val_data is None:
        synthetic = None
        if parse_rule(config.threshold_rule)[0] == "synthetic":
            synthetic, _ = _score(backend, with_synthetic_anomalies(val_inputs, config.train.seed))
        return threshold_from_good(good_scores, config.threshold_rule, synthetic)
    labelled = Dataset.load(config.val_data, need_test=True)
    items = [i for i in labelled.test if i.cls in ("good", "defect")]
    if not any(i.cls == "defect" for i in items):
        raise DatasetError(f"{config.val_data}/test: no defective images to calibrate on")
    kept, crops = [], []
    for item, stored in zip(items, read_uniform(labelled, items, one_size=False), strict=True):
        source = str(labelled.root / item.file)
        check_image(stored, spec, source)
        frame = to_full_scale(stored, stored_bits(stored, None, spec.bit_depth), source)
        if aligned is None:
            kept.append(item)
            crops.append(frame)
            continue
        registration = aligned.registrar.register(frame)
        if registration.accepted and registration.aligned is not None:
            kept.append(item)  # (an unregistered part is rejected on the line anyway)
            crops.append(registration.aligned)
    scores, _ = _score(backend, np.stack([to_model_input(c, spec) for c in crops]))
    is_defect = np.array([i.cls == "defect" for i in kept])
    # Held-out good training images are good parts too: use them alongside the labelled ones.
    return threshold_from_labels(np.r_[good_scores, scores[~is_defect]], scores[is_defect])


def _golden(dataset: Dataset, items: list, scores: np.ndarray, root: Path) -> list[GoldenSample]:
    (root / "golden").mkdir()
    golden = []
    for item, score in zip(items, scores, strict=True):
        name = f"golden/{Path(item.file).name}"
        shutil.copyfile(dataset.root / item.file, root / name)
        golden.append(GoldenSample(file=name, expected_score=float(score)))
    if not golden:
        raise TrainerError("no validation images to use as golden samples")
    return golden
