"""The classifier's model (trainer.classifier) on small drawn feature tables: it separates two
clusters, and kinds of defects on either side of the nuisances; its out-of-distribution
distance is near for a part like the labelled nuisances (even one that differs in a feature they
all share exactly) and far for one unlike them, and its envelope excess is 0 inside the
nuisances' range and grows outside it."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.classifier import (
    MlpConfig,
    TrainedClassifier,
    envelope_excesses,
    grouped_folds,
    nearest_distances,
    nuisance_scale,
    train_classifier,
)
from trainer.errors import TrainerError

FEATURES = 28  # as many as the hu set
REGIONS = 5  # a feature every labelled example shares exactly (one region: log1p(1))
FAST = MlpConfig(hidden=8, epochs=80, folds=3)


def table(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n nuisances around 0 and n defects around 3 (unit spread), feature REGIONS constant."""
    rng = np.random.default_rng(seed)
    nuisances = rng.standard_normal((n, FEATURES))
    defects = 3.0 + rng.standard_normal((n, FEATURES))
    x = np.concatenate([nuisances, defects])
    x[:, REGIONS] = np.log1p(1.0)
    return x.astype(np.float32), np.repeat([True, False], n)


@pytest.fixture(scope="module")
def trained() -> TrainedClassifier:
    x, y = table(12, seed=0)
    return train_classifier(x, y, FAST)


def test_it_tells_the_two_clusters_apart(trained: TrainedClassifier) -> None:
    x, y = table(20, seed=1)  # new parts of both kinds
    p = trained.predict(x).probability
    assert p.shape == (40,) and p.dtype == np.float32
    assert np.all(p[y] > 0.5) and np.all(p[~y] < 0.5)
    assert np.all((trained.held_out >= 0) & (trained.held_out <= 1))


def test_a_nuisance_that_differs_in_a_shared_feature_is_not_far_away(
    trained: TrainedClassifier,
) -> None:
    x, y = table(20, seed=2)
    nuisances = x[y]
    before = trained.predict(nuisances).distance
    nuisances[:, REGIONS] = np.log1p(2.0)  # two regions where every labelled one had one
    distance = trained.predict(nuisances).distance
    # Before the spread was floored, the distance was ~1e5 here: every such part was "ood".
    # Now that one feature moves it by at most (0.405 / 0.1) / sqrt(28) = 0.77.
    assert np.all(distance - before <= 0.77)
    assert np.median(distance) <= 1.5 * trained.distance_max


def test_a_part_unlike_every_nuisance_is_far_away(trained: TrainedClassifier) -> None:
    x, y = table(20, seed=3)
    near = trained.predict(x[y]).distance
    unseen = x[y] + 8.0  # a defect type the classifier never saw, beyond both clusters
    far = trained.predict(unseen).distance
    assert np.median(near) < trained.distance_max
    assert np.all(far > 1.5 * trained.distance_max)


def test_the_scale_is_floored() -> None:
    nuisances = np.array([[1.0, 0.0], [1.0, 2.0]])
    examples = np.array([[1.0, 0.0], [1.0, 2.0], [1.0, 10.0], [1.0, -10.0]])
    scale = nuisance_scale(nuisances, examples)
    assert scale[0] == pytest.approx(0.1)  # shared exactly by all: the absolute floor
    assert scale[1] == pytest.approx(0.25 * examples[:, 1].std())  # a quarter of all's spread


def test_too_few_examples_of_a_class_are_refused() -> None:
    x, y = table(3, seed=4)
    y[1:3] = False  # one nuisance left
    with pytest.raises(TrainerError, match="at least 2 defect and 2 nuisance examples"):
        train_classifier(x, y, FAST)


def test_the_envelope_excess_is_zero_inside_the_nuisances_range_and_grows_outside() -> None:
    x, y = table(12, seed=0)
    trained = train_classifier(x, y, FAST)
    inside = trained.predict(x[y]).excess  # the labelled nuisances themselves
    assert np.all(inside <= 1e-6)  # float32 rounding of the standardisation
    scale = trained.graph.nuisance_scale.numpy()
    beyond = x[y][:1].copy()
    beyond[0, 3] = x[y][:, 3].max() + 2.0 * scale[3]  # two spreads above the highest nuisance
    assert trained.predict(beyond).excess[0] == pytest.approx(2.0, rel=1e-4)
    # Leave one out: some labelled nuisance lies outside the others' range, none by 2 spreads.
    assert 0.0 < trained.excess_max < 2.0


def test_defects_on_either_side_of_the_nuisances_are_told_apart_as_two_kinds() -> None:
    """Nuisances around 0 in feature 0, one defect type at -3 and one at +3: no single sigmoid
    of the standardised features fits both sides with a hidden layer this small, one softmax
    over the kinds does (and P(nuisance) is the nuisance kind's share)."""
    rng = np.random.default_rng(5)
    n = 12
    x = rng.standard_normal((3 * n, 4)).astype(np.float32) * 0.5
    x[n : 2 * n, 0] -= 3.0
    x[2 * n :, 0] += 3.0
    y = np.repeat([True, False, False], n)
    types = ["dust"] * n + ["pit"] * n + ["bump"] * n
    trained = train_classifier(x, y, FAST, types)
    assert trained.kinds == ("defect:bump", "defect:pit", "nuisance:dust")
    test = np.zeros((3, 4), np.float32)
    test[:, 0] = [0.0, -3.0, 3.0]
    p = trained.predict(test).probability
    assert p[0] > 0.5 and p[1] < 0.2 and p[2] < 0.2


def test_a_nuisance_must_fit_the_envelope_of_one_kind_not_the_union_of_them() -> None:
    """Dust is small and dark, lint long and bright (features 0 and 1): a part long and dark
    lies inside the range all nuisances spanned in each feature, but outside each kind's."""
    rng = np.random.default_rng(6)
    n = 10
    x = 0.1 * rng.standard_normal((3 * n, 3)).astype(np.float32)
    x[:n, :2] += [0.0, 0.0]  # dust
    x[n : 2 * n, :2] += [3.0, 3.0]  # lint
    x[2 * n :, 2] += 5.0  # a defect kind, elsewhere
    y = np.repeat([True, True, False], n)
    trained = train_classifier(x, y, FAST, ["dust"] * n + ["lint"] * n + ["pit"] * n)
    like = trained.predict(np.array([[0.0, 0.0, 0.0], [3.0, 3.0, 0.0]], np.float32)).excess
    mixed = trained.predict(np.array([[3.0, 0.0, 0.0]], np.float32)).excess
    assert np.all(like < trained.excess_max)
    assert mixed[0] > 3 * trained.excess_max


def test_p_nuisance_stays_within_0_and_1_when_several_nuisance_kinds_share_it() -> None:
    """Four nuisance kinds, one defect kind far away: a sum of four softmax shares can round to
    1.0000001 in float32 (an ERROR on the line, a refused golden sample); the log-odds form
    cannot, in torch or in the exported graph."""
    rng = np.random.default_rng(7)
    n = 8
    centres = [[0, 0], [0.3, 0], [0, 0.3], [0.3, 0.3], [40, 40]]
    x = np.concatenate([c + 0.2 * rng.standard_normal((n, 2)) for c in centres]).astype(np.float32)
    y = np.repeat([True, True, True, True, False], n)
    types = np.repeat(["dust", "lint", "oil", "light", "pit"], n).tolist()
    trained = train_classifier(x, y, FAST, types)
    near = (0.15 + 0.2 * rng.standard_normal((500, 2))).astype(np.float32)
    p = trained.predict(near).probability
    assert np.all((p >= 0.0) & (p <= 1.0)) and np.mean(p > 0.99) > 0.9


def test_the_regions_of_one_part_never_stand_in_for_each_other() -> None:
    """Two regions of one part share its part-wide features: in the leave-out references and
    in the calibration folds they go together, or a nuisance would look close to itself."""
    rows = np.array([[0.0, 0.0], [0.0, 0.1], [4.0, 0.0], [4.0, 0.1]])
    parts = np.array([0, 0, 1, 1])
    got = nearest_distances(rows, rows, np.ones(2), parts)
    np.testing.assert_allclose(got, [4.0 / np.sqrt(2)] * 2 + [4.0 / np.sqrt(2)] * 2, atol=0.01)
    alone = nearest_distances(rows, rows, np.ones(2), np.arange(4))
    assert alone.max() < 0.1  # each its own part: the sibling is the nearest
    assert envelope_excesses(rows, parts).min() >= 3.9
    kind = np.zeros(12, int)
    groups = np.repeat(np.arange(4), 3)
    fold = grouped_folds(kind, 2, seed=0, groups=groups)
    assert all(len(set(fold[groups == g])) == 1 for g in range(4))
    assert sorted(np.bincount(fold)) == [6, 6]
