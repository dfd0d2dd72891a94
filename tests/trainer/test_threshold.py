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
