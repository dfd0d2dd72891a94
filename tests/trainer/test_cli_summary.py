"""What `partsight-train evaluate` prints: the classifier's three rates when the engine has one."""

from __future__ import annotations

from pathlib import Path

from trainer.cli import summary_text


def test_the_classifier_rates_are_printed_only_for_an_engine_with_one() -> None:
    base = {"image_auroc": 0.9, "counts": {"test": 3}}
    plain = summary_text(base, Path("report.html"))
    assert "classifier" not in plain and plain.endswith("report: report.html")
    verdicts = {"nuisance_pass_rate": 0.785, "defect_escape_rate": 0.0013, "good_pass_rate": 1.0}
    classified = summary_text(
        {**base, "classifier": {"features": "residual"}, "verdicts": verdicts},
        Path("report.html"),
    )
    assert (
        "with the classifier: nuisances passed 78.5%, defects passed (escaped) 0.1%, good parts "
        "passed 100.0%"
    ) in classified
