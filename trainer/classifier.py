"""The heatmap classifier's model (paper §3.3): a small MLP on an anomalous part's features
(edge.heatmap_features), trained in torch with class weighting, its probabilities calibrated
by temperature scaling on held-out folds, and exported to ONNX with the out-of-distribution
measures in the same graph.

One output per labelled *kind* (a class and a type: "defect:scratch", "nuisance:lint"...), not
one for "nuisance": each kind of defect and each kind of nuisance has a look of its own, and a
single two-class boundary has to wrap a union of them from a few examples each; one softmax
over the kinds learns each look and P(nuisance) is the sum over the nuisance kinds. Measured on
bench/bench_classifier.py's synthetic parts (20 per type, 3 seeds, a draft of the residual
features, while this was chosen): nuisances passed 0.71 with one sigmoid, 0.83 with the kinds,
at about the same escapes (0.4 %). Labels without types are two kinds.

The graph (``ClassifierGraph``): features (N, F) float32 →
- ``nuisance_probability`` (N,): Σ over nuisance kinds of softmax(MLP(standardised features) /
  T);
- ``ood_distance`` (N,): the Euclidean distance to the nearest labelled nuisance, the features
  standardised by the nuisances' own spread, divided by √F. The spread is floored at a quarter
  of the spread over all examples and at 0.1 (the features are log-scaled, of order 1), so a
  feature the nuisances happen to share exactly (one region each; a Hu moment that is 0 for
  every one of them) does not make a part that differs in it alone infinitely far away. A
  part that looks unlike every nuisance the classifier saw is far away, whatever the MLP
  extrapolates to; edge.stages.decide compares it with `distance_max`, the largest such
  distance a labelled nuisance has to the others (leave its part out: the regions of one part
  share its part-wide features), times the margin;
- ``envelope_excess`` (N,): how far the part's furthest feature lies outside the range the
  labelled nuisances of one kind spanned in it (their envelope), for the kind it fits best, in
  the same per-feature scale (0 inside): a part passed as a nuisance must look like one kind of
  nuisance shown in every feature, not like lint in its shape and like a light change in its
  size. edge.stages.decide compares it with `excess_max`, the largest excess a labelled
  nuisance has over the envelope of the others of its kind (leave its part out), times the
  margin.
  Leaving one out sizes the allowance to the labels: five nuisances span a narrow range and a
  new one often falls a little outside it, fifty span nearly all of it. Measured with each
  defect type left out of training in turn (bench/bench_classifier.py, 20 per type): the least
  rejected unseen type went from 69 % (chipped edge, one envelope for all nuisances, margin
  1.5) to 86 % (scratch, one per kind, margin 1), for 0.8 points of nuisances passed.

Calibration (Guo et al. 2017, "On calibration of modern neural networks"): the examples are
split in k folds stratified by kind, the regions of a part in one fold (k = min(5, the parts of
the smaller class)); an MLP trained on k − 1 folds gives logits for the held-out one; T
minimises the negative log-likelihood of the class (defect or nuisance) those held-out logits
give (a grid over 1..20, log-spaced: calibration may soften the MLP, never sharpen it; folds of
a few examples each often separate perfectly, which would drive T towards 0 and every
probability to 0 or 1, and a borderline defect with it). The final MLP is trained on every
example, its logits divided by T. The held-out probabilities also give the cross-validated
figures in the manifest (nuisances passed and defects passed at
pass_probability).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.backends.onnxruntime import OnnxRuntimeBackend
from edge.manifest import CLASSIFIER_INPUT, CLASSIFIER_OUTPUTS
from edge.stages.classify import CLASSIFIER_GRAPH
from trainer.errors import ExportError, TrainerError
from trainer.export import OPSET, quiet

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-5  # ONNX Runtime vs torch: probability; distance and excess relative above 1
_TEMPERATURES = np.exp(np.linspace(math.log(1.0), math.log(20.0), 121))
_NUISANCE_SCALE_FLOOR = 0.25  # of the spread over all examples
_ABSOLUTE_SCALE_FLOOR = 0.1  # in feature units (log-scaled, of order 1)


@dataclass(frozen=True)
class MlpConfig:
    hidden: int = 32
    epochs: int = 300
    learning_rate: float = 1e-2
    weight_decay: float = 1e-2
    folds: int = 5
    seed: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class ClassifierGraph(nn.Module):
    """What gets exported: features → (nuisance_probability, ood_distance, envelope_excess)
    (module docstring)."""

    mean: torch.Tensor
    std: torch.Tensor
    is_nuisance_kind: torch.Tensor
    nuisance_mean: torch.Tensor
    nuisance_scale: torch.Tensor
    nuisances: torch.Tensor
    envelope_low: torch.Tensor
    envelope_high: torch.Tensor

    def __init__(
        self, mlp: nn.Module, scaling: tuple[np.ndarray, np.ndarray], temperature: float,
        nuisance_kinds: np.ndarray, nuisances: np.ndarray, kind_of_nuisance: np.ndarray,
        nuisance_scaling: tuple[np.ndarray, np.ndarray],
    ) -> None:  # fmt: skip
        super().__init__()
        self.mlp = mlp
        self.temperature = float(temperature)
        self.register_buffer("mean", torch.from_numpy(scaling[0]).float())
        self.register_buffer("std", torch.from_numpy(scaling[1]).float())
        self.register_buffer("is_nuisance_kind", torch.from_numpy(nuisance_kinds).float())
        self.register_buffer("nuisance_mean", torch.from_numpy(nuisance_scaling[0]).float())
        self.register_buffer("nuisance_scale", torch.from_numpy(nuisance_scaling[1]).float())
        standard = (nuisances - nuisance_scaling[0]) / nuisance_scaling[1]
        self.register_buffer("nuisances", torch.from_numpy(standard).float())
        kinds = np.unique(kind_of_nuisance)
        low = np.stack([standard[kind_of_nuisance == k].min(axis=0) for k in kinds])
        high = np.stack([standard[kind_of_nuisance == k].max(axis=0) for k in kinds])
        self.register_buffer("envelope_low", torch.from_numpy(low).float())  # (kinds, F)
        self.register_buffer("envelope_high", torch.from_numpy(high).float())

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The calibrated logits of the kinds, (N, K)."""
        out: torch.Tensor = self.mlp((x - self.mean) / self.std) / self.temperature
        return out

    def nuisance_log_odds(self, x: torch.Tensor) -> torch.Tensor:
        """log(P(nuisance) / P(defect)), (N,): the log-sum-exp of the nuisance kinds' logits
        minus the defect kinds'. Its sigmoid is the softmax's nuisance share, computed so that it
        stays within [0, 1] in float32 (a sum of shares can round to 1.0000001)."""
        logits = self.logits(x)
        return _masked_logsumexp(logits, self.is_nuisance_kind) - _masked_logsumexp(
            logits, 1.0 - self.is_nuisance_kind
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        probability = torch.sigmoid(self.nuisance_log_odds(x))
        u = (x - self.nuisance_mean) / self.nuisance_scale
        # Differences, not |u|² - 2u·r + |r|²: that cancels badly near a nuisance (distance ~0).
        squared = ((u[:, None, :] - self.nuisances[None, :, :]) ** 2).sum(dim=2)
        nearest = squared.amin(dim=1).sqrt()
        outside = torch.maximum(
            self.envelope_low[None] - u[:, None], u[:, None] - self.envelope_high
        )
        excess = torch.relu(outside).amax(dim=2).amin(dim=1)  # the best-fitting kind
        return probability, nearest / math.sqrt(x.shape[1]), excess


def _masked_logsumexp(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log Σ over the kinds where mask is 1 of exp(logits), (N,), stable: the others are pushed
    1e4 down (their exp underflows to 0) rather than to -inf, which some runtimes mishandle,
    and the largest kept logit is taken out first, so the sum is at least 1."""
    kept = logits - 1e4 * (1.0 - mask)
    top = kept.amax(dim=1, keepdim=True)
    out: torch.Tensor = torch.log(torch.exp(kept - top).sum(dim=1)) + top[:, 0]
    return out


@dataclass(frozen=True)
class Prediction:
    """The graph's three outputs, (N,) float32 each (module docstring)."""

    probability: np.ndarray
    distance: np.ndarray
    excess: np.ndarray


@dataclass
class TrainedClassifier:
    graph: ClassifierGraph
    kinds: tuple[str, ...]  # the softmax's outputs, "defect:TYPE" / "nuisance:TYPE"
    temperature: float
    held_out: np.ndarray  # (N,) P(nuisance) of each example from the MLP that did not see it
    distance_max: float  # largest leave-one-part-out nearest-nuisance distance of a nuisance
    excess_max: float  # largest leave-one-part-out envelope excess of a nuisance

    def predict(self, features: np.ndarray) -> Prediction:
        """What the exported graph gives for features (N, F), from torch."""
        with torch.no_grad(), one_thread():
            p, d, e = self.graph(torch.from_numpy(features.astype(np.float32)))
        return Prediction(p.numpy(), d.numpy(), e.numpy())


def _mlp(features: int, hidden: int, kinds: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, kinds),
    )  # fmt: skip


def _scaling(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.maximum(std, 1e-3 * (float(std.mean()) + 1e-6))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread for the duration: the MLP's tensors are tiny, and on a busy CPU the
    threads of a parallel matrix product mostly wait for each other (ten times slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_mlp(
    x: np.ndarray, kind: np.ndarray, kinds: int, scaling: tuple[np.ndarray, np.ndarray],
    config: MlpConfig, seed: int,
) -> nn.Module:  # fmt: skip
    """Full-batch Adam on the kind-weighted cross-entropy (each kind weighs as much as any
    other, however many examples it has)."""
    torch.manual_seed(seed)
    mlp = _mlp(x.shape[1], config.hidden, kinds)
    z = torch.from_numpy(((x - scaling[0]) / scaling[1]).astype(np.float32))
    target = torch.from_numpy(kind.astype(np.int64))
    counts = np.bincount(kind, minlength=kinds).astype(np.float64)
    weight = torch.from_numpy((len(kind) / (kinds * np.maximum(counts, 1.0))).astype(np.float32))
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.Adam(
        mlp.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    mlp.train()
    for _ in range(config.epochs):
        optimizer.zero_grad()
        loss = loss_fn(mlp(z), target)
        loss.backward()
        optimizer.step()
    return mlp.eval()


def grouped_folds(kind: np.ndarray, k: int, seed: int, groups: np.ndarray) -> np.ndarray:
    """A fold number per example, stratified by kind, the examples of one group (the regions of
    one part) in one fold: each kind's groups dealt out in turn, continuing where the previous
    kind stopped, so the folds stay even."""
    fold = np.empty(len(kind), int)
    rng = np.random.default_rng(seed)
    start = 0
    for value in np.unique(kind):
        members = rng.permutation(np.unique(groups[kind == value]))
        for j, group in enumerate(members):
            fold[groups == group] = (start + j) % k
        start += len(members)
    return fold


def _temperature(logits: np.ndarray, is_nuisance: np.ndarray, nuisance_kinds: np.ndarray) -> float:
    """T minimising the held-out negative log-likelihood of the class, P(nuisance) = Σ over the
    nuisance kinds of softmax(logits / T), logits (N, K). The class, not the kind: mistaking
    dust for lint costs nothing on the line, and calibrating on the kinds would soften every
    probability towards the share of nuisance kinds for such harmless confusions."""
    scaled = logits[None, :, :] / _TEMPERATURES[:, None, None]
    log_all = _logsumexp(scaled)
    log_nuisance = _logsumexp(scaled[:, :, nuisance_kinds]) - log_all
    log_defect = _logsumexp(scaled[:, :, ~nuisance_kinds]) - log_all
    nll = -np.where(is_nuisance[None, :], log_nuisance, log_defect).mean(axis=1)
    return float(_TEMPERATURES[int(np.argmin(nll))])


def _logsumexp(values: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis, computed stably."""
    top = values.max(axis=-1, keepdims=True)
    out: np.ndarray = (top + np.log(np.exp(values - top).sum(axis=-1, keepdims=True)))[..., 0]
    return out


def nearest_distances(
    features: np.ndarray, reference: np.ndarray, scale: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Each row's distance to its nearest row of `reference` outside its own group (rows of
    `features` are rows of `reference`, `groups` (M,) their parts: leave the part out),
    standardised by `scale`, divided by √F; inf for a row with no other group."""
    u = features / scale
    r = reference / scale
    squared = ((u[:, None, :] - r[None, :, :]) ** 2).sum(axis=2)
    squared[groups[:, None] == groups[None, :]] = np.inf
    out: np.ndarray = np.sqrt(squared.min(axis=1)) / math.sqrt(features.shape[1])
    return out


def envelope_excesses(standard: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(M,) each row's excess over the envelope of the rows of `standard` (M, F) outside its own
    group (`groups` (M,), at least two of them): max over features of how far it lies below
    their lowest or above their highest value (0 inside)."""
    out = np.empty(len(standard))
    for i in range(len(standard)):
        others = standard[groups != groups[i]]
        below = others.min(axis=0) - standard[i]
        above = standard[i] - others.max(axis=0)
        out[i] = max(float(np.maximum(below, above).max()), 0.0)
    return out


def _within_kind_excess_max(standard: np.ndarray, kind: np.ndarray, groups: np.ndarray) -> float:
    """The largest leave-one-part-out envelope excess of a nuisance among the others of its kind
    (kinds of a single part have no others and are left out; when every kind is, all the
    nuisances make one envelope)."""
    excesses = [
        envelope_excesses(standard[kind == k], groups[kind == k])
        for k in np.unique(kind)
        if len(np.unique(groups[kind == k])) >= 2
    ]
    if not excesses:
        excesses = [envelope_excesses(standard, groups)]
    return float(np.concatenate(excesses).max())


def nuisance_scale(nuisances: np.ndarray, examples: np.ndarray) -> np.ndarray:
    """(F,) float64: the per-feature scale of the out-of-distribution distance (module
    docstring): the nuisances' (M, F) spread, floored at a quarter of all examples' (N, F)
    spread and at _ABSOLUTE_SCALE_FLOOR."""
    spread = np.maximum(nuisances.std(axis=0), _NUISANCE_SCALE_FLOOR * examples.std(axis=0))
    out: np.ndarray = np.maximum(spread, _ABSOLUTE_SCALE_FLOOR)
    return out


def train_classifier(
    x: np.ndarray,
    is_nuisance: np.ndarray,
    config: MlpConfig,
    types: Sequence[str] | None = None,
    groups: np.ndarray | None = None,
) -> TrainedClassifier:
    """Train on features (N, F), labels (N,) bool (True: nuisance) and, when known, each
    example's type (N,) (None: one kind per class) and group (N,) int: the examples of one group
    (the regions of one part) are held out together and never stand in for one another in the
    out-of-distribution references (None: each example its own group). TrainerError when a
    class has fewer than 2 groups."""
    with one_thread():
        own = np.arange(len(x)) if groups is None else np.asarray(groups)
        return _train(x, is_nuisance, config, types, own)


def _train(
    x: np.ndarray,
    is_nuisance: np.ndarray,
    config: MlpConfig,
    types: Sequence[str] | None,
    groups: np.ndarray,
) -> TrainedClassifier:
    y = is_nuisance.astype(bool)
    counts = (len(np.unique(groups[~y])), len(np.unique(groups[y])))
    if min(counts) < 2:
        raise TrainerError(
            f"the classifier needs at least 2 defect and 2 nuisance examples, got {counts[0]} "
            f"and {counts[1]}"
        )
    labels = [
        f"{'nuisance' if n else 'defect'}:{'' if types is None else types[i]}"
        for i, n in enumerate(y)
    ]
    kinds = tuple(sorted(set(labels)))
    kind = np.array([kinds.index(label) for label in labels])
    nuisance_kinds = np.array([k.startswith("nuisance:") for k in kinds])
    x = x.astype(np.float64)
    k = min(config.folds, min(counts))
    fold = grouped_folds(kind, k, config.seed, groups)
    held_logits = np.empty((len(y), len(kinds)))
    for f in range(k):
        train = fold != f
        scaling = _scaling(x[train])
        mlp = _fit_mlp(x[train], kind[train], len(kinds), scaling, config, config.seed + 1 + f)
        z = torch.from_numpy(((x[~train] - scaling[0]) / scaling[1]).astype(np.float32))
        with torch.no_grad():
            held_logits[~train] = mlp(z).numpy()
    temperature = _temperature(held_logits, y, nuisance_kinds)
    scaled = held_logits / temperature
    log_odds = _logsumexp(scaled[:, nuisance_kinds]) - _logsumexp(scaled[:, ~nuisance_kinds])
    held_out = 1.0 / (1.0 + np.exp(-log_odds))
    scaling = _scaling(x)
    mlp = _fit_mlp(x, kind, len(kinds), scaling, config, config.seed)
    nuisances = x[y]
    nuisance_scaling = (nuisances.mean(axis=0), nuisance_scale(nuisances, x))
    centred = nuisances - nuisance_scaling[0]
    nuisance_groups = groups[y]
    distance_max = float(
        nearest_distances(centred, centred, nuisance_scaling[1], nuisance_groups).max()
    )
    kind_of_nuisance = kind[y]
    excess_max = _within_kind_excess_max(
        centred / nuisance_scaling[1], kind_of_nuisance, nuisance_groups
    )
    graph = ClassifierGraph(
        mlp, scaling, temperature, nuisance_kinds, nuisances.astype(np.float32), kind_of_nuisance,
        nuisance_scaling,
    ).eval()  # fmt: skip
    log.info("classifier: %d defect and %d nuisance parts (%d regions) of %d kinds, %d folds, "
             "T = %.3g", *counts, len(y), len(kinds), k, temperature)  # fmt: skip
    return TrainedClassifier(
        graph, kinds, temperature, held_out, max(distance_max, 1e-6), max(excess_max, 1e-6)
    )


def export_classifier(trained: TrainedClassifier, sample: np.ndarray, path: Path) -> None:
    """Write the graph as ONNX (dynamic batch) and prove ONNX Runtime agrees with torch on
    `sample` (N, F) within PARITY_ATOL; ExportError otherwise."""
    graph = trained.graph.eval().cpu()
    example = torch.from_numpy(sample[:2].astype(np.float32))
    batch = torch.export.Dim("batch", min=1, max=1024)
    with warnings.catch_warnings(), quiet("torch.onnx", "onnxscript", "onnx_ir"):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[CLASSIFIER_INPUT],
            output_names=list(CLASSIFIER_OUTPUTS),
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no classifier program")
    program.save(str(path), external_data=False)
    want = trained.predict(sample)
    got = OnnxRuntimeBackend(path, graph=CLASSIFIER_GRAPH).run(sample.astype(np.float32))
    diff = max(
        float(np.max(np.abs(got["nuisance_probability"] - want.probability))),
        float(np.max(np.abs(got["ood_distance"] - want.distance) / np.maximum(1.0, want.distance))),
        float(np.max(np.abs(got["envelope_excess"] - want.excess) / np.maximum(1.0, want.excess))),
    )
    if not diff <= PARITY_ATOL:  # also NaN
        raise ExportError(f"ONNX Runtime disagrees with torch on the classifier by {diff:.2e}")
