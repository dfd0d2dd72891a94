"""`partsight-train classify`: an engine plus a few labelled images in, the same engine with a
heatmap classifier out (a new bundle, a new version).

Steps: read the labelled folder (trainer.labelled: strict labels.csv) → draw up to N images per
anomaly type (seeded) → the good parts' reference from its good images → features of the drawn
images through the engine's own stages (trainer.feature_table: a row per anomalous region) →
the MLP, calibrated, and the out-of-distribution guard's reference (trainer.classifier), trained
from the parts' labels (trainer.part_training) → ONNX → a copy of the engine's
bundle with the classifier added, a minor version up, two of the labelled images as golden
samples with their expected score, P(nuisance) and distance, every file re-hashed → the new
bundle is loaded and its golden samples re-checked before it replaces `out`.

Every labelled defect and nuisance drawn is an example, whatever its score: the classifier only
judges parts at or above the threshold, but a few labels are precious and an anomaly's look
does not change much on either side of it.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import numpy as np

from edge.bundle import load_bundle, write_manifest
from edge.inspector import Inspector
from edge.manifest import (
    FEATURE_VERSION,
    ClassifierSpec,
    ClassifierTraining,
    GoldenSample,
    Manifest,
)
from edge.stages.decide import Classification
from trainer.classifier import MlpConfig, TrainedClassifier, export_classifier
from trainer.classify_defaults import (
    DEFAULT_FEATURES,
    DEFAULT_OOD_MARGIN,
    DEFAULT_PASS_PROBABILITY,
)
from trainer.engine_output import check_engine_output, replace_with
from trainer.errors import DatasetError, TrainerError
from trainer.export import OPSET
from trainer.feature_table import FeatureExtractor, FeatureTable
from trainer.labelled import LabelledSet, per_type_counts
from trainer.part_training import classify_parts, ood_guard, train_parts

log = logging.getLogger(__name__)

CLASSIFIER_DIR = "classifier"
CLASSIFIER_FILE = f"{CLASSIFIER_DIR}/model.onnx"
REFERENCE_FILE = f"{CLASSIFIER_DIR}/reference.npz"
GOLDEN_DIR = "golden/classifier"


@dataclass(frozen=True)
class ClassifyConfig:
    per_type: int = 20
    features: str = DEFAULT_FEATURES
    seed: int = 0
    pass_probability: float = DEFAULT_PASS_PROBABILITY
    ood_margin: float = DEFAULT_OOD_MARGIN
    mlp: MlpConfig = field(default_factory=MlpConfig)
    show_progress: bool = True


@dataclass(frozen=True)
class ClassifyResult:
    engine: Path
    version: str
    used: dict[str, int]  # labelled images used per type
    defects: int
    nuisances: int
    cv_nuisance_pass_rate: float
    cv_defect_escape_rate: float
    seconds: float


def classify(engine: Path, labelled: Path, out: Path, config: ClassifyConfig) -> ClassifyResult:
    """Train the classifier and write the new bundle to `out` (see the module docstring).
    DatasetError/TrainerError (one line) when it cannot; `<out>.partial/` never outlives a
    failure."""
    if out.resolve() == engine.resolve():
        raise TrainerError(f"--out {out} is the engine itself: write the new engine elsewhere")
    check_engine_output(out, [engine, labelled])
    if config.per_type < 1:
        raise TrainerError(f"--per-type {config.per_type}: need at least 1 image per type")
    if not 0.5 < config.pass_probability <= 1.0:  # also NaN: checked before any work
        raise TrainerError(
            f"--pass-probability {config.pass_probability}: must be above 0.5 and at most 1"
        )
    if not 1.0 <= config.ood_margin < float("inf"):
        raise TrainerError(f"--ood-margin {config.ood_margin}: must be a finite number >= 1")
    staging = out.with_name(out.name + ".partial")
    try:
        return _classify(engine, labelled, out, staging, config)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _classify(
    engine: Path, labelled: Path, out: Path, staging: Path, config: ClassifyConfig
) -> ClassifyResult:
    started = time.perf_counter()
    data = LabelledSet.load(labelled)  # first: a bad label costs no inference
    bundle = load_bundle(engine, without_classifier=True)  # a classifier is replaced
    extractor = FeatureExtractor(bundle, config.show_progress)
    reference = extractor.learn_good(data.root, data.of_class("good"))
    drawn = data.sample(config.per_type, config.seed)
    if not drawn:
        raise DatasetError(f"{data.root}: no defect or nuisance images in labels.csv")
    table = extractor.table(data.root, drawn, "labelled parts")
    x = table.vectors(config.features)
    parts = train_parts(table, config.features, replace(config.mlp, seed=config.seed))
    trained = parts.trained
    held = parts.held_out(table, config.features) >= config.pass_probability
    nuisance = table.is_nuisance
    cv_pass = float(held[nuisance].mean())
    cv_escape = float(held[~nuisance].mean())

    shutil.rmtree(staging, ignore_errors=True)
    dae_files = _dae_files(bundle.manifest)
    _copy_bundle(bundle.root, dae_files, staging)
    (staging / CLASSIFIER_DIR).mkdir()
    export_classifier(trained, x, staging / CLASSIFIER_FILE)
    reference.save(staging / REFERENCE_FILE)
    golden = _golden(table, config.features, trained, data.root, staging)
    manifest = bundle.manifest
    spec = ClassifierSpec(
        file=CLASSIFIER_FILE,
        reference_file=REFERENCE_FILE,
        features=config.features,
        feature_version=FEATURE_VERSION,
        feature_count=x.shape[1],
        opset=OPSET,
        pass_probability=config.pass_probability,
        ood=ood_guard(table, trained, config.ood_margin),
        training=ClassifierTraining(
            labelled=str(labelled),
            per_type=config.per_type,
            seed=config.seed,
            images=per_type_counts(table.items),
            defects=int((~nuisance).sum()),
            nuisances=int(nuisance.sum()),
            temperature=trained.temperature,
            cv_nuisance_pass_rate=cv_pass,
            cv_defect_escape_rate=cv_escape,
        ),
    )
    version = next_version(manifest.version)
    new = manifest.model_copy(
        update={
            "version": version,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "classifier": spec,
            "golden": (*manifest.golden, *golden),
            "trainer": {**manifest.trainer, "classifier": config.mlp.as_dict()},
        }
    )
    payload = [f.path for f in manifest.files if f.path in dae_files]
    payload += [CLASSIFIER_FILE, REFERENCE_FILE, *(g.file for g in golden)]
    write_manifest(staging, new, payload)
    Inspector.open(staging).check_golden()  # the classifier's golden samples included
    replace_with(staging, out)
    used = per_type_counts(table.items)
    return ClassifyResult(
        out, version, used, spec.training.defects, spec.training.nuisances, cv_pass, cv_escape,
        time.perf_counter() - started,
    )  # fmt: skip


def next_version(version: str) -> str:
    """The next minor version: 0.1.0 → 0.2.0 (a pre-release or build suffix is dropped)."""
    core = version.split("-")[0].split("+")[0]
    major, minor, _ = (int(p) for p in core.split("."))
    return f"{major}.{minor + 1}.0"


def _dae_files(manifest: Manifest) -> set[str]:
    """The engine's files but its classifier's. The bundle is loaded without its classifier
    (edge.bundle.load_bundle: the entry and the golden samples that expect one are dropped), but
    their files stay listed: what this command writes lives under CLASSIFIER_DIR and GOLDEN_DIR,
    whichever version wrote it."""
    ours = tuple(f"{folder}/" for folder in (CLASSIFIER_DIR, GOLDEN_DIR))
    return {f.path for f in manifest.files if not f.path.startswith(ours)}


def _copy_bundle(root: Path, files: set[str], staging: Path) -> None:
    for relative in sorted(files):
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / relative, target)


def _golden(
    table: FeatureTable, feature_set: str, trained: TrainedClassifier, root: Path, staging: Path
) -> list[GoldenSample]:
    """The highest-scoring labelled nuisance and defect the classifier judges, with what the
    bundle must give for them: score, P(nuisance), distance, envelope excess (checked whatever
    threshold the line sets)."""
    judged = classify_parts(trained, table, feature_set)
    golden = []
    (staging / GOLDEN_DIR).mkdir(parents=True, exist_ok=True)
    for want_nuisance in (True, False):
        rows = [
            k for k in np.flatnonzero(table.is_nuisance == want_nuisance)
            if isinstance(judged[k], Classification)
        ]  # fmt: skip
        row = int(rows[np.argmax(table.scores[rows])])
        item, answer = table.items[row], judged[row]
        assert isinstance(answer, Classification)
        name = f"{GOLDEN_DIR}/{item.cls}-{PurePosixPath(item.file).name}"
        shutil.copyfile(root / item.file, staging / name)
        golden.append(
            GoldenSample(
                file=name,
                expected_score=float(table.scores[row]),
                expected_nuisance_probability=answer.nuisance_probability,
                expected_ood_distance=answer.distance,
                expected_envelope_excess=answer.excess,
            )
        )
    return golden
