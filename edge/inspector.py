"""One engine, ready to judge images: a short sequence of stages (edge.stages), each with a
typed result, ending in one edge.inspection.Inspection per part:

    register → model → classify (parts at or above the threshold, when the engine has a
    heatmap classifier) → decide → regions
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.backends import InferenceBackend, create_backend
from edge.backends.base import Graph
from edge.bundle import Bundle, load_bundle
from edge.config.engine import BackendConfig, OnnxRuntimeBackendConfig
from edge.errors import BundleError, ImageError, PartSightError
from edge.images import DEFAULT_MAX_PIXELS, read_image
from edge.inspection import ERROR, NOK, OK, Inspection
from edge.manifest import FEATURES_OUTPUT, GoldenSample, InputSpec, Manifest
from edge.preprocess import check_image
from edge.regions import regions_to_frame, top_regions
from edge.stages.classify import CLASSIFIER_GRAPH, Classifier
from edge.stages.decide import (
    Classification,
    ClassifierFailure,
    Decision,
    DecisionPolicy,
    decide,
)
from edge.stages.model import Scored, run_model
from edge.stages.register import Registered, register

if TYPE_CHECKING:  # registration (Numba) is imported only by engines that register
    from edge.gpu.crop import DeviceCrop
    from edge.registration import Registrar

log = logging.getLogger(__name__)

__all__ = ["ERROR", "NOK", "OK", "Inspection", "Inspector", "inspect_files", "model_graph"]

# Golden samples: how close a backend's P(nuisance) must come to the expected one, at least.
GOLDEN_PROBABILITY_ATOL = 1e-4


def model_graph(
    manifest: Manifest, activations: bool | None = None, reconstruction: bool | None = None
) -> Graph:
    """The DAE graph as the manifest describes it; the line fetches the score and the map, the
    encoder's activations when `activations` and the reconstruction when `reconstruction`
    (None: when the engine's classifier needs them: CNN features pool the activations, residual
    features read the reconstruction)."""
    spec = manifest.classifier
    if activations is None:
        activations = spec is not None and spec.needs_activations
    if reconstruction is None:
        reconstruction = spec is not None and spec.needs_reconstruction
    fetch = (
        "anomaly_map", "score",
        *((FEATURES_OUTPUT,) if activations else ()),
        *(("reconstruction",) if reconstruction else ()),
    )  # fmt: skip
    return Graph(manifest.model.outputs, fetch)


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
        classifier_backend: InferenceBackend | None = None,
        pass_probability: float | None = None,
        ood_margin: float | None = None,
    ) -> None:
        """``backend`` runs the DAE (see model_graph for what it must fetch); an engine with a
        heatmap classifier needs ``classifier_backend`` too (its graph on CLASSIFIER_GRAPH).
        ``threshold``, ``pass_probability`` and ``ood_margin`` override the manifest's
        (BundleError for the last two on an engine without a classifier).
        ``crop_on_device``: cut the registered crop on the GPU straight into the backend's
        input buffer (no host copy of it); None: when registration runs on CUDA and the backend
        takes device input (TensorRT). True insists (GpuUnavailable if it cannot)."""
        self.bundle = bundle
        self.backend = backend
        self.classifier = self._classifier(classifier_backend)
        self.policy = self._policy(threshold, pass_probability, ood_margin)
        self.threshold = self.policy.threshold
        self.pixel_threshold = bundle.manifest.scoring.pixel_threshold
        self.registrar = self._registrar(registration_device, min_confidence)
        self._crop_on_device = crop_on_device
        self._device_crop = self._gpu_crop()

    def _classifier(self, backend: InferenceBackend | None) -> Classifier | None:
        has = self.bundle.manifest.classifier is not None
        if has and backend is None:
            raise BundleError(f"{self.bundle.root}: the engine's classifier needs a backend")
        if not has and backend is not None:
            raise BundleError(f"{self.bundle.root}: the engine has no heatmap classifier to run")
        return None if backend is None else Classifier(self.bundle, backend)

    def _policy(
        self, threshold: float | None, pass_probability: float | None, ood_margin: float | None
    ) -> DecisionPolicy:
        manifest = self.bundle.manifest
        spec = manifest.classifier
        if spec is None and (pass_probability is not None or ood_margin is not None):
            raise BundleError(
                f"{self.bundle.root}: pass_probability/ood_margin are set, but the engine has "
                "no heatmap classifier"
            )
        try:
            return DecisionPolicy(
                threshold=manifest.scoring.threshold if threshold is None else threshold,
                pass_probability=(
                    None if spec is None else _or(pass_probability, spec.pass_probability)
                ),
                guard=None if spec is None else spec.ood,
                ood_margin=None if spec is None else _or(ood_margin, spec.ood.margin),
            )
        except ValueError as exc:
            raise BundleError(f"{self.bundle.root}: {exc}") from exc

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
        engine: Path | str | Bundle,
        backend: BackendConfig | None = None,
        threshold: float | None = None,
        registration_device: str = "auto",
        min_confidence: float | None = None,
        *,
        pass_probability: float | None = None,
        ood_margin: float | None = None,
    ) -> Inspector:
        """Load the bundle (a folder; or a Bundle already loaded and verified, e.g. from its
        signed manifest) and the backend its configuration section asks for (default: ONNX
        Runtime with its defaults), for the DAE and, if the engine has one, its classifier."""
        bundle = engine if isinstance(engine, Bundle) else load_bundle(engine)
        manifest = bundle.manifest
        section = backend if backend is not None else OnnxRuntimeBackendConfig()
        spec = manifest.classifier
        model = create_backend(section, bundle.path(manifest.model.file), model_graph(manifest))
        classifier = (
            None if spec is None
            else create_backend(section, bundle.path(spec.file), CLASSIFIER_GRAPH)
        )  # fmt: skip
        return cls(
            bundle, model, threshold, registration_device, min_confidence,
            classifier_backend=classifier, pass_probability=pass_probability,
            ood_margin=ood_margin,
        )  # fmt: skip

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
        """Judge a batch. Raises ImageError for a frame the engine cannot take (naming it) and
        InferenceError when the DAE's backend fails; a part that cannot be registered is a NOK
        with reason "registration", one the classifier cannot judge an ERROR "classifier".

        `bit_depths`: each image's significant bits when its source knows them (a camera:
        hw.frame.Grab.bit_depth); None (the default) for image files, read as data of the depth
        the engine was trained on (edge.bit_depth)."""
        registered, scored = self.score_batch(images, sources, bit_depths)
        t0 = time.perf_counter()
        classified = self._classify(scored)
        asked = sum(c is not None for c in classified)
        classify_ms = (time.perf_counter() - t0) * 1e3 / max(asked, 1)  # per classified part
        results = []
        judged = iter(zip(scored, classified, strict=True))
        for r in registered:
            latency = {"register": r.register_ms, "preprocess": r.preprocess_ms}
            if not r.ready:
                results.append(self._unregistered(r, latency))
                continue
            s, c = next(judged)
            latency["inference"] = s.inference_ms
            if c is not None:
                latency["classify"] = classify_ms
            results.append(self._inspection(r, s, c, decide(s.score, self.policy, c), latency))
        return results

    def score_batch(
        self,
        images: Sequence[np.ndarray],
        sources: Sequence[str],
        bit_depths: Sequence[int | None] | None = None,
    ) -> tuple[list[Registered], list[Scored]]:
        """The first two stages: every frame registered, and the ready ones scored (in order).
        Errors as inspect_batch."""
        spec = self.bundle.manifest.input
        depths = [None] * len(images) if bit_depths is None else bit_depths
        on_device = self._device_crop is not None
        registered = [
            register(image, source, bits, spec, self.registrar, on_device)
            for image, source, bits in zip(images, sources, depths, strict=True)
        ]
        inputs_from = None if self.classifier is None else self.threshold
        ready = [r for r in registered if r.ready]
        return registered, run_model(self.backend, ready, self._device_crop, inputs_from)

    def _classify(self, scored: list[Scored]) -> list[Classification | ClassifierFailure | None]:
        """The classifier's answer for each anomalous part (None: not asked)."""
        classifier = self.classifier
        if classifier is None:
            return [None] * len(scored)
        flagged = [i for i, s in enumerate(scored) if s.score >= self.threshold]
        views = [classifier.view(scored[i], self.threshold) for i in flagged]
        answers = classifier.classify(views) if views else []
        out: list[Classification | ClassifierFailure | None] = [None] * len(scored)
        for i, answer in zip(flagged, answers, strict=True):
            out[i] = answer
        return out

    def _inspection(
        self,
        r: Registered,
        s: Scored,
        c: Classification | ClassifierFailure | None,
        decision: Decision,
        latency: dict[str, float],
    ) -> Inspection:
        """Stage 5, the regions, and the result."""
        if decision.verdict == ERROR:
            log.error("part cannot be judged: %s", decision.detail)
        to_frame = self._to_frame(r, s.anomaly_map.shape)
        # Unregistered: the map covers the whole frame, resized (each frame's own size).
        height, width = r.image.shape[:2]
        regions = regions_to_frame(
            top_regions(s.anomaly_map, self.pixel_threshold),
            _scale_affine(s.anomaly_map.shape, (width, height)) if to_frame is None else to_frame,
        )
        return Inspection(
            verdict=decision.verdict,
            reason=decision.reason,
            score=s.score,
            threshold=self.threshold,
            anomaly_map=s.anomaly_map,
            model_input=s.model_input,
            regions=regions,
            latency_ms=latency,
            pose=r.registration.pose if r.registration else None,
            confidence=r.registration.confidence if r.registration else None,
            to_frame=to_frame,
            defect_class=decision.defect_class,
            class_probability=decision.class_probability,
            classification=c if isinstance(c, Classification) else None,
            detail=decision.detail,
        )

    def _unregistered(self, r: Registered, latency: dict[str, float]) -> Inspection:
        confidence = r.registration.confidence if r.registration else 0.0
        log.info("part not registered (confidence %.2f)", confidence)
        return Inspection(
            verdict=NOK,
            reason="registration",
            score=None,
            threshold=self.threshold,
            anomaly_map=None,
            model_input=None,
            latency_ms=latency,
            pose=r.registration.pose if r.registration else None,
            confidence=confidence,
        )

    def _to_frame(self, r: Registered, map_shape: tuple[int, ...]) -> np.ndarray | None:
        """Affine map from model-input pixels to frame pixels, when the part was registered."""
        if r.registration is None or self.registrar is None:
            return None
        from edge.registration import template_to_frame

        template = self.registrar.template
        crop_to_frame = template_to_frame(r.registration.pose, template.ref)
        # Model pixels → crop pixels (the crop may be resized for the model), then → frame.
        return crop_to_frame @ np.vstack([_scale_affine(map_shape, template.size), [0, 0, 1]])

    def check_golden(self) -> None:
        """Re-score the bundle's golden samples through the whole path (registration, the GPU
        crop if any, the backend, the classifier for the samples that expect a classifier
        answer); BundleError if they disagree. A reduced-precision backend (TensorRT FP16)
        that disagrees is replaced by its FP32 plan, which must agree."""
        for _ in range(3):  # at most: the model, then the classifier, falls back to FP32
            problem = self._golden_problem()
            if problem is None:
                break
            which, why = problem
            if not self._to_fp32(which, why):
                raise BundleError(why)
        else:
            raise BundleError(why)
        classifier = "" if self.classifier is None else (
            f", classifier on {self.classifier.backend.name} ({self.classifier.backend.precision})"
        )  # fmt: skip
        log.info(
            "engine %s: %d golden samples check out on %s (%s)%s",
            self.bundle.manifest.name,
            len(self.bundle.manifest.golden),
            self.backend.name,
            self.backend.precision,
            classifier,
        )

    def _to_fp32(self, which: str, why: str) -> bool:
        """Replace the model's (or the classifier's) backend by its FP32 version; False when
        it already is FP32."""
        current = self.backend if which == "model" else self.classifier.backend  # type: ignore[union-attr]
        fp32 = current.at_fp32(why)
        if fp32 is None:
            return False
        log.warning("%s: %s precision is not good enough, using %s", why, current.precision,
                    fp32.precision)  # fmt: skip
        if which == "model":
            self.backend = fp32
            self._device_crop = self._gpu_crop()
        else:
            assert self.classifier is not None
            self.classifier.backend = fp32
        return True

    def _golden_problem(self) -> tuple[str, str] | None:
        """The first golden sample this path gets wrong, as ("model" | "classifier", a
        one-line message), or None. The classifier is asked whatever the threshold, so an
        overridden threshold cannot skip its check."""
        for sample in self.bundle.manifest.golden:
            path = self.bundle.path(sample.file)
            _, scored = self.score_batch([read_image(path)], [str(path)])
            if not scored:
                return "model", f"{self.bundle.root}: golden sample {sample.file} not registered"
            got, want = scored[0].score, sample.expected_score
            rtol = max(sample.rtol, self.backend.golden_rtol)
            if not np.isclose(got, want, rtol=rtol, atol=1e-9):
                return "model", (
                    f"{self.bundle.root}: golden sample {sample.file} scores {got:.6g}, "
                    f"expected {want:.6g} (rtol {rtol:g}, {self.backend.name} "
                    f"{self.backend.precision})"
                )
            if sample.expected_nuisance_probability is not None:
                problem = self._golden_classification(sample.file, scored[0], sample)
                if problem is not None:
                    return "classifier", problem
        return None

    def _golden_classification(self, file: str, s: Scored, sample: GoldenSample) -> str | None:
        classifier = self.classifier
        if classifier is None:
            return f"{self.bundle.root}: golden sample {file} expects a classifier"
        (answer,) = classifier.classify([classifier.view(s, self.threshold)])
        if isinstance(answer, ClassifierFailure):
            return f"{self.bundle.root}: golden sample {file}: classifier failed: {answer.why}"
        backend = classifier.backend
        slack = max(self.backend.golden_rtol, backend.golden_rtol)
        atol = max(GOLDEN_PROBABILITY_ATOL, slack)
        rtol = max(sample.rtol, slack)
        want_p = sample.expected_nuisance_probability
        got_p = answer.nuisance_probability
        checks = (
            (answer.distance, sample.expected_ood_distance),
            (answer.excess, sample.expected_envelope_excess),
        )
        close = all(
            want is None or np.isclose(got, want, rtol=rtol, atol=1e-6) for got, want in checks
        )
        if want_p is not None and abs(got_p - want_p) <= atol and close:
            return None
        return (
            f"{self.bundle.root}: golden sample {file}: P(nuisance) {got_p:.6f}, distance "
            f"{answer.distance:.6g} and envelope excess {answer.excess:.6g}, expected "
            f"{want_p:.6f} (atol {atol:g}), {sample.expected_ood_distance} and "
            f"{sample.expected_envelope_excess} ({backend.name} {backend.precision})"
        )


def _or(override: float | None, default: float) -> float:
    return default if override is None else override


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
