"""The decision rule (edge.stages.decide) on small fixed inputs: threshold, classifier, the
out-of-distribution guard and the classifier-error path."""

from __future__ import annotations

import math

import pytest

from edge.manifest import OodGuard
from edge.stages.decide import (
    Classification,
    ClassifierFailure,
    Decision,
    DecisionPolicy,
    decide,
)

GUARD = OodGuard(score_max=10.0, area_max=200.0, distance_max=2.0, excess_max=0.4, margin=1.5)
POLICY = DecisionPolicy(threshold=4.0, pass_probability=0.9, guard=GUARD, ood_margin=1.5)
PLAIN = DecisionPolicy(threshold=4.0)


def part(
    p: float, score: float = 6.0, area: float = 100.0, distance: float = 1.0, excess: float = 0.0
) -> Classification:
    return Classification(
        nuisance_probability=p, score=score, area=area, distance=distance, excess=excess
    )


def test_below_the_threshold_is_ok_whatever_the_classifier_would_say() -> None:
    assert decide(3.999, POLICY, None) == Decision("OK", "")
    assert decide(3.999, POLICY, part(0.0)) == Decision("OK", "")


def test_without_a_classifier_an_anomaly_is_nok() -> None:
    assert decide(4.0, PLAIN, None) == Decision("NOK", "anomaly")


def test_a_sure_nuisance_is_passed_with_its_probability() -> None:
    assert decide(6.0, POLICY, part(0.95)) == Decision("OK", "nuisance", "nuisance", 0.95)
    assert decide(6.0, POLICY, part(0.9)).verdict == "OK"  # at pass_probability: passed


def test_an_unsure_nuisance_is_a_defect_with_the_defect_probability() -> None:
    got = decide(6.0, POLICY, part(0.899))
    assert (got.verdict, got.reason, got.defect_class) == ("NOK", "anomaly", "defect")
    assert got.class_probability == pytest.approx(0.101)


@pytest.mark.parametrize(
    ("classification", "beyond"),
    [
        (part(0.99, score=15.01), "score"),  # 1.5 x 10
        (part(0.99, area=300.5), "area"),  # 1.5 x 200
        (part(0.99, distance=3.01), "distance"),  # 1.5 x 2
        (part(0.99, distance=math.nan), "NaN distance"),
        (part(0.99, excess=0.61), "envelope"),  # 1.5 x 0.4
        (part(0.99, excess=math.nan), "NaN envelope"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_guard_rejects_what_lies_beyond_every_labelled_nuisance(
    classification: Classification, beyond: str
) -> None:
    got = decide(20.0 if beyond == "score" else 6.0, POLICY, classification)
    assert (got.verdict, got.reason, got.defect_class) == ("NOK", "ood", "defect")
    assert got.class_probability == pytest.approx(0.01)


def test_just_inside_the_guard_is_still_passed() -> None:
    got = decide(6.0, POLICY, part(0.99, score=15.0, area=300.0, distance=3.0, excess=0.6))
    assert got == Decision("OK", "nuisance", "nuisance", 0.99)


def test_a_larger_margin_from_the_configuration_lets_it_through() -> None:
    wider = DecisionPolicy(threshold=4.0, pass_probability=0.9, guard=GUARD, ood_margin=2.0)
    assert decide(6.0, wider, part(0.99, distance=3.5)).verdict == "OK"
    assert decide(6.0, POLICY, part(0.99, distance=3.5)).verdict == "NOK"
    assert decide(6.0, wider, part(0.99, excess=0.7)).verdict == "OK"
    assert decide(6.0, POLICY, part(0.99, excess=0.7)).verdict == "NOK"


@pytest.mark.parametrize(
    "answer",
    [ClassifierFailure("backend exploded"), None, part(math.nan), part(1.5), part(-0.1)],
    ids=["failure", "not asked", "nan", "above 1", "below 0"],
)
def test_a_classifier_error_is_an_error_never_an_ok(
    answer: Classification | ClassifierFailure | None,
) -> None:
    got = decide(6.0, POLICY, answer)
    assert (got.verdict, got.reason, got.defect_class) == ("ERROR", "classifier", None)
    assert got.detail


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": math.nan}, "not a finite number"),
        (
            {"threshold": 1.0, "pass_probability": 0.5, "guard": GUARD, "ood_margin": 1.5},
            "(0.5, 1]",
        ),
        ({"threshold": 1.0, "pass_probability": 0.9, "guard": GUARD, "ood_margin": 0.5}, ">= 1"),
        ({"threshold": 1.0, "pass_probability": 0.9}, "go together"),
    ],
)
def test_a_policy_that_could_pass_too_much_is_refused(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        DecisionPolicy(**kwargs)  # type: ignore[arg-type]
