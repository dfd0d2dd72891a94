"""One engine, ready to judge images: registration, preprocessing, the model, the threshold and
the regions."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.backends import InferenceBackend, ModelOutputs, create_backend
from edge.bit_depth import stored_bits, to_full_scale
from edge.bundle import Bundle, load_bundle
from edge.config.engine import BackendConfig, OnnxRuntimeBackendConfig
from edge.errors import BundleError, ImageError, InferenceError, PartSightError
from edge.images import DEFAULT_MAX_PIXELS, read_image
from edge.manifest import InputSpec
from edge.preprocess import check_image, to_model_input
from edge.regions import Region, regions_to_frame, top_regions

if TYPE_CHECKING:  # registration (Numba) is imported only by engines that register
    from edge.gpu.crop import DeviceCrop
    from edge.registration import Pose, Registrar, Registration

log = logging.getLogger(__name__)

OK, NOK, ERROR = "OK", "NOK", "ERROR"


@dataclass(frozen=True)
class Inspection:
    verdict: str  # OK | NOK
    reason: str  # why NOK: "anomaly" or "registration"; "" when OK
    score: float | None  # None when the part could not be registered (never scored)
    threshold: float
    anomaly_map: np.ndarray | None  # (H, W) float32 at the model's resolution
    model_input: np.ndarray | None  # (C, H, W) float32, what the model saw (None: on the GPU)
    regions: list[Region] = field(default_factory=list)  # in frame coordinates
    latency_ms: dict[str, float] = field(default_factory=dict)
    pose: Pose | None = None  # where the part lay, when the engine registers
    confidence: float | None = None  # registration confidence in [0, 1]
    to_frame: np.ndarray | None = None  # 2x3 affine: model-input crop pixels → frame pixels


@dataclass(frozen=True)
class _Prepared:
    """A frame after registration: ready to score (its model input on the host, or its frame
    and pose for the GPU crop), or not registered."""

    image: np.ndarray
    model_input: np.ndarray | None  # None on the GPU path or when not registered
    registration: Registration | None
    register_ms: float
    preprocess_ms: float
    ready: bool


class Inspector:
    def __init__(
        self,
        bundle: Bundle,
        backend: InferenceBackend,
        threshold: float | None = None,
        registration_device: str = "auto",
        min_confidence: float | None = None,
        *,
        crop_on_device: bool | None = None,
    ) -> None:
        """``crop_on_device``: cut the registered crop on the GPU straight into the backend's
        input buffer (no host copy of it); None: when registration runs on CUDA and the backend
        takes device input (TensorRT). True insists (GpuUnavailable if it cannot)."""
        self.bundle = bundle
        self.backend = backend
        scoring = bundle.manifest.scoring
        self.threshold = scoring.threshold if threshold is None else threshold
        if not math.isfinite(self.threshold):  # NaN or inf would pass every part
            raise BundleError(f"threshold {self.threshold} is not a finite number")
        self.pixel_threshold = scoring.pixel_threshold
        self.registrar = self._registrar(registration_device, min_confidence)
        self._crop_on_device = crop_on_device
        self._device_crop = self._gpu_crop()

    def _registrar(self, device: str, min_confidence: float | None) -> Registrar | None:
        spec = self.bundle.manifest.registration
        if spec is None:
            return None
        # Imported here: engines without registration never pay Numba's start-up.
        from edge.registration import Registrar, Template, TemplateError

        try:
            template = Template.load(self.bundle.path(spec.directory))
        except TemplateError as exc:
            raise BundleError(f"{self.bundle.root}: registration template: {exc}") from exc
        confidence = spec.min_confidence if min_confidence is None else min_confidence
        return Registrar(template, device=device, min_confidence=confidence)

    def _gpu_crop(self) -> DeviceCrop | None:
        """The GPU hand-off (see __init__), or None for the host path."""
        wanted = self._crop_on_device
        target = self.backend.device_input()
        if wanted is False or (wanted is None and (
            target is None or self.registrar is None or self.registrar.device != "cuda"
        )):  # fmt: skip
            return None
        from edge.gpu.crop import DeviceCrop
        from edge.gpu.device import GpuUnavailable

        if target is None or self.registrar is None:
            raise GpuUnavailable(
                f"a GPU crop needs a registering engine and a backend with device input "
                f"({self.backend.name} has none)"
            )
        template = self.registrar.template
        try:
            crop = DeviceCrop(target, template.ref, template.size, self.bundle.manifest.input)
        except GpuUnavailable as exc:
            if wanted:
                raise
            log.warning("%s", exc)
            return None
        log.info("registered crops are cut on %s straight into %s's input", target.device,
                 self.backend.name)  # fmt: skip
        return crop

    @classmethod
    def open(
        cls,
        engine: Path | str,
        backend: BackendConfig | None = None,
        threshold: float | None = None,
        registration_device: str = "auto",
        min_confidence: float | None = None,
    ) -> Inspector:
        """Load the bundle and the backend its configuration section asks for (default: ONNX
        Runtime with its defaults)."""
        bundle = load_bundle(engine)
        section = backend if backend is not None else OnnxRuntimeBackendConfig()
        model = create_backend(section, bundle.path(bundle.manifest.model.file))
        return cls(bundle, model, threshold, registration_device, min_confidence)

    def inspect(
        self, image: np.ndarray, source: str = "frame", bit_depth: int | None = None
    ) -> Inspection:
        """Judge one image; `bit_depth` as in inspect_batch."""
        return self.inspect_batch([image], [source], [bit_depth])[0]

    def inspect_batch(
        self,
        images: Sequence[np.ndarray],
        sources: Sequence[str],
        bit_depths: Sequence[int | None] | None = None,
    ) -> list[Inspection]:
        """Judge a batch. Raises ImageError for a frame the engine cannot take (naming it);
        a part that cannot be registered is a NOK with reason "registration", not an error.

        `bit_depths`: each image's significant bits when its source knows them (a camera:
        hw.frame.Grab.bit_depth); None (the default) for image files, read as data of the depth
        the engine was trained on (edge.bit_depth)."""
        depths = [None] * len(images) if bit_depths is None else bit_depths
        prepared = [
            self._prepare(im, src, bits)
            for im, src, bits in zip(images, sources, depths, strict=True)
        ]
        ready = [p for p in prepared if p.ready]
        outputs = None
        infer_ms = 0.0
        if ready:
            t0 = time.perf_counter()
            outputs = self._infer(ready)
            infer_ms = (time.perf_counter() - t0) * 1e3 / len(ready)
            if outputs.score.shape != (len(ready),) or not np.all(np.isfinite(outputs.score)):
                raise InferenceError(f"backend returned unusable scores {outputs.score!r}")
            if outputs.anomaly_map.shape[:2] != (len(ready), 1):
                raise InferenceError(f"backend returned maps of shape {outputs.anomaly_map.shape}")
        results = []
        row = 0
        for p in prepared:
            latency = {"register": p.register_ms, "preprocess": p.preprocess_ms}
            if not p.ready or outputs is None:
                results.append(self._unregistered(p, latency))
                continue
            latency["inference"] = infer_ms
            score = float(outputs.score[row])
            amap = outputs.anomaly_map[row, 0]
            row += 1
            to_frame = self._to_frame(p, amap.shape)
            # Unregistered: the map covers the whole frame, resized (each frame's own size).
            height, width = p.image.shape[:2]
            regions = regions_to_frame(
                top_regions(amap, self.pixel_threshold),
                _scale_affine(amap.shape, (width, height)) if to_frame is None else to_frame,
            )
            nok = score >= self.threshold
            results.append(
                Inspection(
                    verdict=NOK if nok else OK,
                    reason="anomaly" if nok else "",
                    score=score,
                    threshold=self.threshold,
                    anomaly_map=amap,
                    model_input=p.model_input,
                    regions=regions,
                    latency_ms=latency,
                    pose=p.registration.pose if p.registration else None,
                    confidence=p.registration.confidence if p.registration else None,
                    to_frame=to_frame,
                )
            )
        return results

    def _prepare(self, image: np.ndarray, source: str, bit_depth: int | None) -> _Prepared:
        spec = self.bundle.manifest.input
        check_image(image, spec, source)
        image = to_full_scale(image, stored_bits(image, bit_depth, spec.bit_depth), source)
        on_device = self._device_crop is not None
        t0 = time.perf_counter()
        registration = (
            self.registrar.register(image, warp=not on_device) if self.registrar else None
        )
        t1 = time.perf_counter()
        register_ms = (t1 - t0) * 1e3
        if registration is not None and not registration.accepted:
            return _Prepared(image, None, registration, register_ms, 0.0, ready=False)
        if on_device:  # cut and preprocessed on the GPU by _infer
            return _Prepared(image, None, registration, register_ms, 0.0, ready=True)
        crop = image if registration is None else registration.aligned
        assert crop is not None  # register() warps unless told not to
        model_input = to_model_input(crop, spec)
        t2 = time.perf_counter()
        return _Prepared(image, model_input, registration, register_ms, (t2 - t1) * 1e3, True)

    def _infer(self, ready: list[_Prepared]) -> ModelOutputs:
        """Score the ready parts: from host model inputs, or (GPU path) by cutting each
        registered part out of its frame on the device, max_batch parts at a time."""
        crop = self._device_crop
        if crop is None:
            return self.backend.run(np.stack([p.model_input for p in ready]))  # type: ignore[misc]
        scores, maps = [], []
        step = crop.target.max_batch
        for start in range(0, len(ready), step):
            chunk = ready[start : start + step]
            for row, p in enumerate(chunk):
                assert p.registration is not None  # the GPU path is for registering engines
                crop.stage(row, p.image, p.registration.pose)
            out = crop.target.run(len(chunk))
            scores.append(out.score)
            maps.append(out.anomaly_map)
        return ModelOutputs(None, np.concatenate(maps), np.concatenate(scores))

    def _unregistered(self, p: _Prepared, latency: dict[str, float]) -> Inspection:
        confidence = p.registration.confidence if p.registration else 0.0
        log.info("part not registered (confidence %.2f)", confidence)
        return Inspection(
            verdict=NOK,
            reason="registration",
            score=None,
            threshold=self.threshold,
            anomaly_map=None,
            model_input=None,
            latency_ms=latency,
            pose=p.registration.pose if p.registration else None,
            confidence=confidence,
        )

    def _to_frame(self, p: _Prepared, map_shape: tuple[int, ...]) -> np.ndarray | None:
        """Affine map from model-input pixels to frame pixels, when the part was registered."""
        if p.registration is None or self.registrar is None:
            return None
        from edge.registration import template_to_frame

        template = self.registrar.template
        crop_to_frame = template_to_frame(p.registration.pose, template.ref)
        # Model pixels → crop pixels (the crop may be resized for the model), then → frame.
        return crop_to_frame @ np.vstack([_scale_affine(map_shape, template.size), [0, 0, 1]])

    def check_golden(self) -> None:
        """Re-score the bundle's golden samples through the whole path (registration, the GPU
        crop if any, the backend); BundleError if they disagree. A reduced-precision backend
        (TensorRT FP16) that disagrees is replaced by its FP32 plan, which must agree."""
        problem = self._golden_problem()
        if problem is not None:
            fp32 = self.backend.at_fp32(problem)
            if fp32 is None:
                raise BundleError(problem)
            log.warning("%s: %s precision is not good enough, using %s", problem,
                        self.backend.precision, fp32.precision)  # fmt: skip
            self.backend = fp32
            self._device_crop = self._gpu_crop()
            problem = self._golden_problem()
            if problem is not None:
                raise BundleError(problem)
        log.info(
            "engine %s: %d golden samples check out on %s (%s)",
            self.bundle.manifest.name,
            len(self.bundle.manifest.golden),
            self.backend.name,
            self.backend.precision,
        )

    def _golden_problem(self) -> str | None:
        """The first golden sample this path gets wrong, as a one-line message, or None."""
        for sample in self.bundle.manifest.golden:
            path = self.bundle.path(sample.file)
            got = self.inspect(read_image(path), str(path)).score
            want = sample.expected_score
            rtol = max(sample.rtol, self.backend.golden_rtol)
            if got is None:
                return f"{self.bundle.root}: golden sample {sample.file} not registered"
            if not np.isclose(got, want, rtol=rtol, atol=1e-9):
                return (
                    f"{self.bundle.root}: golden sample {sample.file} scores {got:.6g}, "
                    f"expected {want:.6g} (rtol {rtol:g}, {self.backend.name} "
                    f"{self.backend.precision})"
                )
        return None


def _scale_affine(map_shape: tuple[int, ...], size: tuple[int, int]) -> np.ndarray:
    """2x3 affine from map pixels to the pixels of an image of `size` (W, H) it was resized
    from; pixel centres at integer coordinates."""
    sx, sy = size[0] / map_shape[1], size[1] / map_shape[0]
    return np.array([[sx, 0.0, (sx - 1) / 2], [0.0, sy, (sy - 1) / 2]])


def inspect_files(
    inspector: Inspector,
    paths: Sequence[Path],
    batch_size: int = 8,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[Path, Inspection | ImageError]]:
    """Judge image files in batches, yielding (path, result) in the order of `paths`. A file
    that cannot be judged (unreadable, a broken link, more than `max_pixels` pixels, a frame
    the engine refuses) yields its ImageError in its place, so it never costs the others
    their result."""
    spec = inspector.bundle.manifest.input
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        read = [_read(path, spec, max_pixels) for path in chunk]
        images = [image for image in read if isinstance(image, np.ndarray)]
        ready = [p for p, image in zip(chunk, read, strict=True) if isinstance(image, np.ndarray)]
        judged = iter(_judge(inspector, ready, images))
        for path, image in zip(chunk, read, strict=True):
            yield path, next(judged) if isinstance(image, np.ndarray) else image


def _read(path: Path, spec: InputSpec, max_pixels: int) -> np.ndarray | ImageError:
    """The stored image if the engine can take it, else why not."""
    try:
        image = read_image(path, max_pixels)
        check_image(image, spec, str(path))
    except ImageError as exc:
        return exc
    return image


def _judge(
    inspector: Inspector, paths: Sequence[Path], images: Sequence[np.ndarray]
) -> list[Inspection | ImageError]:
    """One batch; if it fails, one by one, so one bad image does not cost the batch."""
    if not images:
        return []
    try:
        return list(inspector.inspect_batch(images, [str(p) for p in paths]))
    except PartSightError:
        pass
    results: list[Inspection | ImageError] = []
    for path, image in zip(paths, images, strict=True):
        try:
            results.append(inspector.inspect(image, str(path)))
        except ImageError as exc:
            results.append(exc)
        except PartSightError as exc:
            results.append(ImageError(str(path), str(exc)))
    return results
