"""The heatmap classifier's defaults (`partsight-train classify`), chosen on the benchmark
(bench/bench_classifier.py, figures in bench/results/latest.json) and kept in a module of their
own so the command line can show them without importing torch."""

from __future__ import annotations

DEFAULT_FEATURES = "residual"  # the best measured of the sets (bench/bench_classifier.py)
DEFAULT_PASS_PROBABILITY = 0.9  # conservative: a part is passed only when the classifier is sure
DEFAULT_OOD_MARGIN = 1.0  # a passed part lies within what the labelled nuisances showed (their
# leave-one-out maxima for the distance and the envelope: already an allowance)
