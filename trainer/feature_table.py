"""The heatmap classifier's features of labelled images, computed exactly as the line computes
them: the edge runtime's own register and model stages (ONNX Runtime, fetching the DAE's
reconstruction and, when the graph has them, the encoder's activations), then
edge.heatmap_features. Every feature group is kept, so the feature sets can be compared without
running the DAE again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.backends.onnxruntime import OnnxRuntimeBackend
from edge.bundle import Bundle
from edge.heatmap_features import (
    MAX_REGIONS,
    RESIDUAL_COUNT,
    GoodReference,
    PartView,
    anomalous_region,
    cnn_features,
    hu_features,
    residual_features,
)
from edge.inspector import Inspector, model_graph
from edge.manifest import FEATURE_GROUPS
from edge.stages.model import Scored
from trainer.errors import DatasetError
from trainer.labelled import Labelled
from trainer.progress import progress_bar

log = logging.getLogger(__name__)

BATCH = 16
TOO_MANY_REGIONS = f"more than {MAX_REGIONS} separate anomalous regions"
MAX_GOOD = 200  # good images enough for the reference's mean and spread


@dataclass(frozen=True)
class FeatureTable:
    """Per image: its label, the engine's score, the peak region's area (model pixels) and
    every feature group: the part-wide ``hu`` and ``cnn`` a row per image, ``residual`` a row
    per anomalous region (``owner``: the image of each, its rows together, strongest first; none
    for an image with more regions than the line judges, which it rejects: TOO_MANY_REGIONS);
    ``scored`` keeps the map and model input (for the report's pictures)."""

    items: tuple[Labelled, ...]
    scores: np.ndarray  # (N,)
    areas: np.ndarray  # (N,)
    hu: np.ndarray  # (N, HU_COUNT)
    residual: np.ndarray  # (M, RESIDUAL_COUNT): a part may have no rows (TOO_MANY_REGIONS)
    owner: np.ndarray  # (M,) intp: the image of each residual row
    cnn: np.ndarray | None  # (N, 2 Cf); None when the engine has no encoder output
    scored: tuple[Scored, ...]

    def owners(self, feature_set: str) -> np.ndarray:
        """(M,) intp: the image of each row of `vectors(feature_set)`."""
        if "residual" in FEATURE_GROUPS[feature_set]:
            return self.owner
        return np.arange(len(self.items))

    def vectors(self, feature_set: str) -> np.ndarray:
        """(M, F) float32 for a feature set, a row per region (edge.heatmap_features.features:
        its groups in edge.manifest.FEATURE_GROUPS' order, the part-wide ones repeated);
        DatasetError for CNN features without them."""
        groups = FEATURE_GROUPS[feature_set]
        if "cnn" in groups and self.cnn is None:
            raise DatasetError(
                f"{feature_set} features need the engine's encoder output (its model.onnx has "
                "no 'features' output: re-fit the engine with this trainer, or use --features "
                "residual)"
            )
        owner = self.owners(feature_set)
        arrays = {
            "hu": self.hu[owner],
            "residual": self.residual,
            "cnn": None if self.cnn is None else self.cnn[owner],
        }
        return np.concatenate([arrays[g] for g in groups], axis=1).astype(np.float32)

    def subset(self, rows: Sequence[int]) -> FeatureTable:
        """The table of the images `rows` (indices into items), in that order."""
        index = np.asarray(rows, dtype=np.intp)
        picked = [np.flatnonzero(self.owner == i) for i in index]
        return FeatureTable(
            tuple(self.items[i] for i in index), self.scores[index], self.areas[index],
            self.hu[index], self.residual[np.concatenate([np.zeros(0, np.intp), *picked])],
            np.repeat(np.arange(len(index)), [len(p) for p in picked]),
            None if self.cnn is None else self.cnn[index], tuple(self.scored[i] for i in index),
        )  # fmt: skip

    @property
    def is_nuisance(self) -> np.ndarray:
        return np.array([i.cls == "nuisance" for i in self.items])


class FeatureExtractor:
    """The register and model stages of an engine on ONNX Runtime, fetching the DAE's
    reconstruction and the encoder's activations when the engine's graph has them, and the good
    parts' reference."""

    def __init__(self, bundle: Bundle, show_progress: bool = True) -> None:
        manifest = bundle.manifest
        self.has_activations = manifest.model.has_features
        graph = model_graph(manifest, activations=self.has_activations, reconstruction=True)
        # The engine's DAE stages only: an old classifier, if any, plays no part.
        dae = Bundle(bundle.root, manifest.model_copy(update={"classifier": None}))
        backend = OnnxRuntimeBackend(bundle.path(manifest.model.file), graph=graph)
        self.inspector = Inspector(dae, backend, registration_device="cpu")
        self.manifest = manifest
        self.show_progress = show_progress
        self.reference: GoodReference | None = None

    def score(self, root: Path, files: Sequence[str], what: str) -> list[Scored | None]:
        """Every file registered and scored (None: the engine could not register it);
        DatasetError naming a file that cannot be read or judged."""
        out: list[Scored | None] = []
        bar = progress_bar(len(files), what, "image", enabled=self.show_progress)
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            images = [_read(root / f) for f in chunk]
            try:
                registered, scored = self.inspector.score_batch(
                    images, [str(root / f) for f in chunk]
                )
            except Exception as exc:  # ImageError / InferenceError: name the dataset's file
                raise DatasetError(str(exc)) from exc
            judged = iter(scored)
            out.extend(next(judged) if r.ready else None for r in registered)
            bar.update(len(chunk))
        bar.close()
        return out

    def learn_good(self, root: Path, good: Sequence[Labelled]) -> GoodReference:
        """The reference from up to MAX_GOOD good images (evenly spread over the list)."""
        if len(good) < 2:
            raise DatasetError(
                f"{root}: {len(good)} good image(s); the features need at least 2 (the good "
                "parts' appearance they compare to)"
            )
        step = max(1, len(good) // MAX_GOOD)
        files = [g.file for g in good[::step][:MAX_GOOD]]
        scored = [s for s in self.score(root, files, "good parts") if s is not None]
        inputs = np.stack([s.model_input for s in scored])  # type: ignore[misc]  # host path
        reconstructions = np.stack([s.reconstruction for s in scored])  # type: ignore[misc]
        activations = (
            np.stack([s.activation for s in scored])  # type: ignore[misc]
            if self.has_activations else None
        )  # fmt: skip
        self.reference = GoodReference.from_good(
            inputs, reconstructions, self._foreground(), activations
        )
        return self.reference

    def _foreground(self) -> np.ndarray | None:
        mask_file = self.manifest.scoring.mask_file
        if mask_file is None:
            return None
        mask = cv2.imread(str(self.inspector.bundle.path(mask_file)), cv2.IMREAD_GRAYSCALE)
        return None if mask is None else mask > 0

    def table(
        self, root: Path, items: Sequence[Labelled], what: str, *, skip_unregistered: bool = False
    ) -> FeatureTable:
        """Features of `items` (after learn_good). An image the engine cannot register is a
        DatasetError naming it, or left out with `skip_unregistered` (the line rejects it
        before any classifier)."""
        reference = self.reference
        assert reference is not None, "learn_good first"
        found = self.score(root, [i.file for i in items], what)
        missing = [i.file for i, s in zip(items, found, strict=True) if s is None]
        if missing and not skip_unregistered:
            raise DatasetError(f"{root / missing[0]}: the engine cannot register it")
        items = [i for i, s in zip(items, found, strict=True) if s is not None]
        scored = [s for s in found if s is not None]
        threshold = self.inspector.threshold
        pixel_threshold = self.inspector.pixel_threshold
        hu, residual, cnn, areas = [], [], [], []
        for s in scored:
            assert s.model_input is not None  # the host path
            view = PartView(s.anomaly_map, s.model_input, s.reconstruction, s.activation, s.score,
                            threshold, pixel_threshold)  # fmt: skip
            region = anomalous_region(s.anomaly_map, pixel_threshold)
            hu.append(hu_features(view, region, reference))
            try:
                residual.append(residual_features(view, reference))
            except ValueError as exc:  # more regions than the line judges: it rejects the part
                log.warning("%s: %s; left out of the classifier (the line rejects it)",
                            root / items[len(residual)].file, exc)  # fmt: skip
                residual.append(np.zeros((0, RESIDUAL_COUNT)))
            if self.has_activations:
                cnn.append(cnn_features(view, region, reference))
            areas.append(region.area)
        return FeatureTable(
            tuple(items),
            np.array([s.score for s in scored]),
            np.array(areas, dtype=np.float64),
            np.array(hu).reshape(len(scored), -1),
            np.concatenate(residual) if residual else np.zeros((0, RESIDUAL_COUNT)),
            np.repeat(np.arange(len(residual)), [len(r) for r in residual]),
            np.array(cnn).reshape(len(scored), -1) if self.has_activations else None,
            tuple(scored),
        )


def _read(path: Path) -> np.ndarray:
    from edge.errors import ImageError
    from edge.images import read_image

    try:
        return read_image(path)
    except ImageError as exc:
        raise DatasetError(str(exc)) from exc
