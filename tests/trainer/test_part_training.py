"""Training the region classifier from part labels (trainer.part_training) on a small drawn
feature table: a defect part whose strongest region is a dust speck is learnt from its other
region, and judged, as on the line, by its most defect-like region, so it is not passed."""

from __future__ import annotations

import numpy as np

from edge.heatmap_features import RESIDUAL_COUNT
from trainer.classifier import MlpConfig
from trainer.feature_table import FeatureTable
from trainer.labelled import Labelled
from trainer.part_training import classify_parts, train_parts

FAST = MlpConfig(hidden=8, epochs=80, folds=3)
DUST, PIT = 0.0, 3.0  # where each kind's regions lie in feature space


def parts(kinds: list[tuple[str, str, list[float]]], seed: int) -> FeatureTable:
    """A table of parts (class, type, the centre of each of its regions, strongest first)."""
    rng = np.random.default_rng(seed)
    rows = [c + 0.4 * rng.standard_normal(RESIDUAL_COUNT) for _, _, cs in kinds for c in cs]
    n = len(kinds)
    return FeatureTable(
        items=tuple(Labelled(f"{k}.png", cls, kind) for k, (cls, kind, _) in enumerate(kinds)),
        scores=np.full(n, 2.0), areas=np.full(n, 10.0), hu=np.zeros((n, 28)),
        residual=np.array(rows), owner=np.repeat(np.arange(n), [len(c) for *_, c in kinds]),
        cnn=None, scored=(),
    )  # fmt: skip


def labelled(seed: int) -> FeatureTable:
    dust = [("nuisance", "dust", [DUST] * (1 + k % 3)) for k in range(12)]  # 1-3 specks
    pit = [("defect", "pit", [PIT]) for _ in range(12)]
    # A pit with a speck beside it that is the stronger of the two.
    both = [("defect", "pit_with_dust", [DUST, PIT]) for _ in range(12)]
    return parts(dust + pit + both, seed)


def test_a_defect_part_is_learnt_from_its_most_defect_like_region() -> None:
    table = labelled(seed=0)
    trained = train_parts(table, "residual", FAST)
    owner = table.owner
    mixed = [k for k, item in enumerate(table.items) if item.type == "pit_with_dust"]
    taught = set(trained.rows.tolist())
    for part in mixed:
        speck, pit = np.flatnonzero(owner == part)
        assert pit in taught and speck not in taught
    dust_rows = [r for r in range(len(owner)) if table.items[owner[r]].type == "dust"]
    assert set(dust_rows) <= taught  # every region of a nuisance part is a nuisance
    assert trained.held_out(table, "residual").shape == (len(table.items),)


def test_a_defect_beside_a_stronger_speck_is_judged_a_defect() -> None:
    trained = train_parts(labelled(seed=0), "residual", FAST).trained
    test = parts([("defect", "pit_with_dust", [DUST, PIT]), ("nuisance", "dust", [DUST] * 3)], 1)
    mixed, dust = classify_parts(trained, test, "residual")
    strongest_only = trained.predict(test.vectors("residual")[:1]).probability[0]
    assert strongest_only > 0.9  # the speck alone looks like a nuisance...
    assert mixed.nuisance_probability < 0.1  # ...the part does not
    assert dust.nuisance_probability > 0.9
