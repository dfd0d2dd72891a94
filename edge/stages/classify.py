"""Stage 3: the heatmap classifier, for the parts the threshold flags (paper §3.3).

Each anomalous part's features (edge.heatmap_features: numpy and OpenCV, never torch; a row per
anomalous region) go, as one batch, through the classifier's ONNX graph on the same kind of
inference backend as the DAE (edge.backends.create_backend with the same configuration section:
TensorRT runs both). For each region the graph returns P(nuisance), calibrated, the distance to
the nearest labelled nuisance (standardised features) and how far its furthest feature lies
outside the labelled nuisances' envelope (the out-of-distribution guard's last two measures); a
part takes its most defect-like region's answers (part_classification). Anything that goes
wrong here is a ClassifierFailure for the parts concerned, which edge.stages.decide turns into
ERROR verdicts: a part the classifier could not judge is rejected, never passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.backends import Graph, InferenceBackend
from edge.bundle import Bundle
from edge.errors import BundleError, PartSightError
from edge.heatmap_features import GoodReference, PartView, features
from edge.manifest import CLASSIFIER_OUTPUTS, ClassifierSpec
from edge.stages.decide import Classification, ClassifierFailure
from edge.stages.model import Scored

log = logging.getLogger(__name__)

CLASSIFIER_GRAPH = Graph.of(CLASSIFIER_OUTPUTS)


class Classifier:
    """The classifier of a bundle, on `backend` (built from the bundle's classifier file with
    CLASSIFIER_GRAPH). BundleError when the bundle's classifier does not fit this runtime (its
    reference; its feature layout is checked by edge.bundle.load_bundle) or the engine (CNN
    features need the encoder output)."""

    def __init__(self, bundle: Bundle, backend: InferenceBackend) -> None:
        spec = bundle.manifest.classifier
        if spec is None:
            raise BundleError(f"{bundle.root}: the engine has no classifier")
        if spec.needs_activations and not bundle.manifest.model.has_features:
            raise BundleError(
                f"{bundle.root}: {spec.features} features need the model's encoder output"
            )
        inputs = bundle.manifest.input
        self.spec: ClassifierSpec = spec
        self.backend = backend
        self.reference = GoodReference.load(
            bundle.path(spec.reference_file), (inputs.height, inputs.width)
        )
        if spec.needs_activations and self.reference.activation_mean is None:
            raise BundleError(f"{bundle.root}: {spec.reference_file} has no activation reference")
        self.pixel_threshold = bundle.manifest.scoring.pixel_threshold

    def view(self, scored: Scored, threshold: float) -> PartView | ClassifierFailure:
        """What the features of a scored part are computed from, or why there is nothing to
        compute them on."""
        if scored.model_input is None:
            return ClassifierFailure("the model input is not on the host")
        if self.spec.needs_activations and scored.activation is None:
            return ClassifierFailure("the model returned no encoder activations")
        if self.spec.needs_reconstruction and scored.reconstruction is None:
            return ClassifierFailure("the model returned no reconstruction")
        return PartView(
            scored.anomaly_map, scored.model_input, scored.reconstruction, scored.activation,
            scored.score, threshold, self.pixel_threshold,
        )  # fmt: skip

    def classify(
        self, parts: Sequence[PartView | ClassifierFailure]
    ) -> list[Classification | ClassifierFailure]:
        """Each part's Classification, in order; a part that cannot be judged gets its
        ClassifierFailure (the others still get theirs when only their features failed)."""
        answers: list[Classification | ClassifierFailure | None] = []
        rows: list[tuple[int, np.ndarray, float, float]] = []  # (index, rows, score, area)
        for part in parts:
            answers.append(part if isinstance(part, ClassifierFailure) else None)
            if isinstance(part, ClassifierFailure):
                continue
            try:
                vectors, region = features(self.spec.features, part, self.reference)
            except (ValueError, cv2.error) as exc:  # OpenCV's own error is not a ValueError
                answers[-1] = ClassifierFailure(f"features: {exc}")
                continue
            if (
                vectors.ndim != 2 or len(vectors) < 1
                or vectors.shape[1] != self.spec.feature_count or not np.all(np.isfinite(vectors))
            ):  # fmt: skip
                bad = int(np.count_nonzero(~np.isfinite(vectors)))
                answers[-1] = ClassifierFailure(
                    f"unusable features: shape {vectors.shape}, {bad} not finite"
                )
                continue
            rows.append((len(answers) - 1, vectors, part.score, float(region.area)))
        if rows:
            self._run(rows, answers)
        assert all(a is not None for a in answers)
        return answers  # type: ignore[return-value]  # every None was filled in

    def _run(
        self,
        rows: list[tuple[int, np.ndarray, float, float]],
        answers: list[Classification | ClassifierFailure | None],
    ) -> None:
        total = sum(len(vectors) for _, vectors, _, _ in rows)
        try:
            out = self.backend.run(np.concatenate([vectors for _, vectors, _, _ in rows]))
            probability, distance = out["nuisance_probability"], out["ood_distance"]
            excess = out["envelope_excess"]
            shapes = {probability.shape, distance.shape, excess.shape}
            if shapes != {(total,)}:
                raise PartSightError(f"the classifier returned shapes {sorted(shapes)} for "
                                     f"{total} regions")  # fmt: skip
        except PartSightError as exc:
            log.error("heatmap classifier failed: %s", exc)
            for index, *_ in rows:
                answers[index] = ClassifierFailure(str(exc))
            return
        start = 0
        for index, vectors, score, area in rows:
            end = start + len(vectors)
            answers[index] = part_classification(
                probability[start:end], distance[start:end], excess[start:end], score, area
            )
            start = end


def part_classification(
    probability: np.ndarray, distance: np.ndarray, excess: np.ndarray, score: float, area: float
) -> Classification:
    """What the classifier says of a part from what it says of each of its regions, (R,) each,
    R >= 1: a part is as defect-like as its most defect-like region, so the lowest P(nuisance),
    the largest distance and the largest envelope excess (a NaN anywhere stays NaN, which the
    decision rejects). The trainer aggregates with this very function."""
    # np.min and np.max propagate NaN.
    return Classification(
        float(np.min(probability)), score, area, float(np.max(distance)), float(np.max(excess))
    )


def classifier_file(bundle: Bundle) -> Path | None:
    """The bundle's classifier graph, or None for an engine without a classifier."""
    spec = bundle.manifest.classifier
    return None if spec is None else bundle.path(spec.file)
