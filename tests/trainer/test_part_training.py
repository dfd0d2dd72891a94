"""Training the region classifier from part labels (trainer.part_training) on a small drawn
feature table: a defect part whose strongest region is a dust speck is learnt from its other
region, and judged, as on the line, by its most defect-like region, so it is not passed."""

from __future__ import annotations

import numpy as np

from edge.heatmap_features import RESIDUAL_COUNT
from edge.manifest import OodGuard
from edge.stages.decide import Classification, ClassifierFailure, DecisionPolicy, decide
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
        residual=np.array(rows).reshape(-1, RESIDUAL_COUNT),
        owner=np.repeat(np.arange(n), [len(c) for *_, c in kinds]),
        cnn=None, scored=(None,) * n,  # type: ignore[arg-type]  # no pictures needed here
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


def test_held_out_probabilities_follow_the_labels_and_a_part_never_learnt_from_is_nan() -> None:
    dust = [("nuisance", "dust", [DUST] * (1 + k % 3)) for k in range(12)]
    pit = [("defect", "pit", [PIT]) for _ in range(12)]
    table = parts([*dust, *pit, ("nuisance", "dust", [])], seed=0)  # the last: no rows
    held = train_parts(table, "residual", FAST).held_out(table, "residual")
    assert np.median(held[:12]) > 0.9 > 0.1 > np.median(held[12:24])
    assert np.isnan(held[24])


def test_a_part_with_no_rows_is_an_error_on_the_line() -> None:
    """A part with more regions than the line judges has no rows (trainer.feature_table): the
    trainer judges it as the line does, an ERROR, never a pass."""
    trained = train_parts(labelled(seed=0), "residual", FAST).trained
    test = parts([("nuisance", "dust", [DUST]), ("nuisance", "dust", [])], seed=3)
    judged, crowded = classify_parts(trained, test, "residual")
    assert isinstance(judged, Classification) and judged.nuisance_probability > 0.9
    assert isinstance(crowded, ClassifierFailure)
    policy = DecisionPolicy(1.0, 0.9, OodGuard(score_max=10, area_max=100, distance_max=10,
                                               excess_max=10, margin=1.0), 1.0)  # fmt: skip
    assert decide(2.0, policy, crowded).verdict == "ERROR"


def test_a_subset_keeps_each_part_with_its_own_rows() -> None:
    table = parts([("nuisance", "dust", [DUST]), ("defect", "pit", [PIT, DUST, PIT]),
                   ("nuisance", "dust", [DUST, DUST])], seed=4)  # fmt: skip
    picked = table.subset([2, 1])
    assert [i.file for i in picked.items] == ["2.png", "1.png"]
    np.testing.assert_array_equal(picked.owner, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(picked.residual, table.residual[[4, 5, 1, 2, 3]])
    assert len(table.subset([]).residual) == 0


def test_without_one_region_defects_training_starts_from_the_strongest_and_still_picks_one() -> (
    None
):
    dust = [("nuisance", "dust", [DUST] * (1 + k % 3)) for k in range(12)]
    both = [("defect", "pit_with_dust", [DUST, PIT]) for _ in range(12)]
    table = parts(dust + both, seed=5)
    trained = train_parts(table, "residual", FAST)
    nuisance_rows = int(np.sum(table.is_nuisance[table.owner]))
    assert len(trained.rows) == nuisance_rows + 12  # every dust region, one region per defect
    assert len(set(table.owner[trained.rows[nuisance_rows:]].tolist())) == 12
