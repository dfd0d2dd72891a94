"""One engine, ready to judge images: preprocessing, the model, the threshold and the regions."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.backends import InferenceBackend, create_backend
from edge.bundle import Bundle, load_bundle
from edge.errors import BundleError, ImageError, InferenceError
from edge.images import read_image
from edge.preprocess import check_image, to_model_input
from edge.regions import Region, top_regions

log = logging.getLogger(__name__)

OK, NOK, ERROR = "OK", "NOK", "ERROR"


@dataclass(frozen=True)
class Inspection:
    verdict: str  # OK | NOK
    reason: str  # why NOK ("anomaly"), "" when OK
    score: float
    threshold: float
    anomaly_map: np.ndarray  # (H, W) float32 at the model's resolution
    model_input: np.ndarray  # (C, H, W) float32, what the model saw
    regions: list[Region] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)


class Inspector:
    def __init__(
        self, bundle: Bundle, backend: InferenceBackend, threshold: float | None = None
    ) -> None:
        self.bundle = bundle
        self.backend = backend
        scoring = bundle.manifest.scoring
        self.threshold = scoring.threshold if threshold is None else threshold
        self.pixel_threshold = scoring.pixel_threshold

    @classmethod
    def open(
        cls,
        engine: Path | str,
        backend: str = "onnxruntime",
        threshold: float | None = None,
        threads: int = 0,
    ) -> Inspector:
        bundle = load_bundle(engine)
        model = create_backend(backend, bundle.path(bundle.manifest.model.file), threads=threads)
        return cls(bundle, model, threshold)

    def inspect(self, image: np.ndarray, source: str = "frame") -> Inspection:
        return self.inspect_batch([image], [source])[0]

    def inspect_batch(
        self, images: Sequence[np.ndarray], sources: Sequence[str]
    ) -> list[Inspection]:
        """Judge a batch. Raises ImageError for a frame the engine cannot take (naming it)."""
        spec = self.bundle.manifest.input
        start = time.perf_counter()
        batch = np.stack(
            [to_model_input(im, spec, src) for im, src in zip(images, sources, strict=True)]
        )
        prepared = time.perf_counter()
        out = self.backend.run(batch)
        scored = time.perf_counter()
        if out.score.shape != (len(images),) or not np.all(np.isfinite(out.score)):
            raise InferenceError(f"backend returned unusable scores {out.score!r}")
        per_image = {
            "preprocess": (prepared - start) * 1e3 / len(images),
            "inference": (scored - prepared) * 1e3 / len(images),
        }
        source_size = (spec.source_width, spec.source_height)
        results = []
        for i in range(len(images)):
            score = float(out.score[i])
            amap = out.anomaly_map[i, 0]
            nok = score >= self.threshold
            results.append(
                Inspection(
                    verdict=NOK if nok else OK,
                    reason="anomaly" if nok else "",
                    score=score,
                    threshold=self.threshold,
                    anomaly_map=amap,
                    model_input=batch[i],
                    regions=top_regions(amap, self.pixel_threshold, source_size),
                    latency_ms=dict(per_image),
                )
            )
        return results

    def check_golden(self) -> None:
        """Re-score the bundle's golden samples; BundleError if this backend disagrees."""
        for sample in self.bundle.manifest.golden:
            path = self.bundle.path(sample.file)
            got = self.inspect(read_image(path), str(path)).score
            want = sample.expected_score
            if not np.isclose(got, want, rtol=sample.rtol, atol=1e-9):
                raise BundleError(
                    f"{self.bundle.root}: golden sample {sample.file} scores {got:.6g}, "
                    f"expected {want:.6g} (rtol {sample.rtol})"
                )
        log.info(
            "engine %s: %d golden samples check out",
            self.bundle.manifest.name,
            len(self.bundle.manifest.golden),
        )


def inspect_files(
    inspector: Inspector, paths: Sequence[Path], batch_size: int = 8
) -> list[tuple[Path, Inspection | ImageError]]:
    """Judge image files in batches; a file that cannot be judged yields its ImageError in place,
    so one corrupt image never costs the others their result."""
    spec = inspector.bundle.manifest.input
    results: list[tuple[Path, Inspection | ImageError]] = []
    pending: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        judged = inspector.inspect_batch([im for _, im in pending], [str(p) for p, _ in pending])
        results.extend((p, j) for (p, _), j in zip(pending, judged, strict=True))
        pending.clear()

    for path in paths:
        try:
            image = read_image(path)
            check_image(image, spec, str(path))
        except ImageError as exc:
            results.append((path, exc))
            continue
        pending.append((path, image))
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return results
