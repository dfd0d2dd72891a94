import numpy as np
import pytest

from trainer.threshold import threshold_from_good, threshold_from_labels


def test_sigma_rule() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    value, text = threshold_from_good(scores, "sigma:3")
    assert value == pytest.approx(2.5 + 3 * np.std(scores, ddof=1))
    assert "mean + 3 std of 4" in text


def test_quantile_rule_and_never_the_minimum() -> None:
    scores = np.linspace(0, 1, 101)
    value, _ = threshold_from_good(scores, "quantile:0.99")
    assert value == pytest.approx(0.99)
    assert value > scores.min()


@pytest.mark.parametrize("rule", ["min", "sigma:-1", "quantile:0.1", "quantile:1", "sigma:x"])
def test_bad_rules(rule: str) -> None:
    with pytest.raises(ValueError, match="threshold rule"):
        threshold_from_good(np.ones(5), rule)


def test_f1_rule_separates_labelled_scores() -> None:
    value, text = threshold_from_labels(np.array([0.1, 0.2, 0.3]), np.array([0.6, 0.7]))
    assert 0.3 < value <= 0.6 and "F1-optimal" in text


@pytest.mark.parametrize("rule", ["sigma:3", "quantile:0.99"])
def test_scores_that_do_not_vary_get_a_floor_margin(rule: str) -> None:
    """Field input 6's sibling: near-identical training images give validation scores with no
    spread, and mean + 3·0 put the threshold on the good parts' own score: all NOK."""
    scores = np.full(5, 1.97)
    value, text = threshold_from_good(scores, rule)
    assert value == pytest.approx(1.97 * 1.05)
    assert (scores < value).all()  # the good parts come out OK
    assert text.endswith(", raised to the floor mean + 5% (scores barely vary)")


def test_the_floor_leaves_a_spread_threshold_alone() -> None:
    scores = np.array([1.0, 1.5, 2.0, 2.5])
    value, text = threshold_from_good(scores, "sigma:3")
    assert value == pytest.approx(1.75 + 3 * np.std(scores, ddof=1)) and "floor" not in text


def test_non_finite_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="not all finite"):
        threshold_from_good(np.array([1.0, np.nan, 2.0]), "sigma:3")


def test_the_synthetic_rule_cuts_between_good_and_synthetic_anomaly_scores() -> None:
    good = np.array([1.0, 1.1, 1.2, 1.3])
    synthetic = np.array([1.25, 2.0, 2.5, 3.0])
    threshold, how = threshold_from_good(good, "synthetic", synthetic)
    # F1-optimal: flag 2.0 and above (3 of 4 anomalies, no good part): F1 = 6/7; flagging 1.25
    # too catches all 4 at the cost of one good part: F1 = 8/9, the better cut.
    assert 1.2 < threshold <= 1.25
    assert how.startswith("F1-optimal (F1 0.889) between 4 good validation images and 4 with")


def test_the_synthetic_rule_needs_synthetic_scores() -> None:
    with pytest.raises(ValueError, match="needs scores of images with synthetic anomalies"):
        threshold_from_good(np.array([1.0, 1.1]), "synthetic")
    with pytest.raises(ValueError, match="expected sigma:K .* or synthetic"):
        threshold_from_good(np.array([1.0, 1.1]), "synthetics")
