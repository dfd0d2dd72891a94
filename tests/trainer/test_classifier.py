"""The classifier's model (trainer.classifier) on small drawn feature tables: it separates two
clusters, and its out-of-distribution distance is near for a part like the labelled nuisances
(even one that differs in a feature they all share exactly) and far for one unlike them."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.classifier import MlpConfig, TrainedClassifier, nuisance_scale, train_classifier
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
    p, _ = trained.predict(x)
    assert p.shape == (40,) and p.dtype == np.float32
    assert np.all(p[y] > 0.5) and np.all(p[~y] < 0.5)
    assert np.all((trained.held_out >= 0) & (trained.held_out <= 1))


def test_a_nuisance_that_differs_in_a_shared_feature_is_not_far_away(
    trained: TrainedClassifier,
) -> None:
    x, y = table(20, seed=2)
    nuisances = x[y]
    _, before = trained.predict(nuisances)
    nuisances[:, REGIONS] = np.log1p(2.0)  # two regions where every labelled one had one
    _, distance = trained.predict(nuisances)
    # Before the spread was floored, the distance was ~1e5 here: every such part was "ood".
    # Now that one feature moves it by at most (0.405 / 0.1) / sqrt(28) = 0.77.
    assert np.all(distance - before <= 0.77)
    assert np.median(distance) <= 1.5 * trained.distance_max


def test_a_part_unlike_every_nuisance_is_far_away(trained: TrainedClassifier) -> None:
    x, y = table(20, seed=3)
    _, near = trained.predict(x[y])
    unseen = x[y] + 8.0  # a defect type the classifier never saw, beyond both clusters
    _, far = trained.predict(unseen)
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
