"""The charts, pinned to the published average run lengths.

Two-sided tabular CUSUM k = 0.5, h = 5: Montgomery, Introduction to Statistical Quality Control,
Table 9.3. EWMA λ = 0.1, L = 2.814: Lucas & Saccucci (1990), Montgomery Table 9.11. Monte-Carlo
estimates (fixed seed, 4,000 runs vectorised over numpy arrays) within 5 %, the Markov chains
within 1 %. The Bernoulli CUSUM (Reynolds & Stoumbos 1999) has no table here: its exact chain
is checked against a plain dense solve and against simulation.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.monitor.arl import (
    _absorbing_arl,
    bernoulli_arl,
    cusum_arl,
    ewma_arl,
    monte_carlo_arl,
)
from edge.monitor.bernoulli import BernoulliCusum, design, gamma
from edge.monitor.cusum import TabularCusum
from edge.monitor.detector import ABOVE, BELOW, IN_CONTROL
from edge.monitor.ewma import Ewma

RUNS = 4000
CUSUM_TABLE = {0.0: 465.0, 0.5: 38.0, 1.0: 10.4, 2.0: 4.01}
EWMA_TABLE = {0.0: 500.0, 0.5: 31.3, 1.0: 10.3, 2.0: 4.4}  # 4.36 in the table, 4.4 in the issue


@pytest.mark.parametrize("shift", sorted(CUSUM_TABLE))
def test_cusum_monte_carlo_arl_matches_montgomery(shift: float) -> None:
    got = monte_carlo_arl(TabularCusum(k=0.5, h=5.0), shift, RUNS, seed=12)
    assert got.censored == 0
    assert got.arl == pytest.approx(CUSUM_TABLE[shift], rel=0.05)


@pytest.mark.parametrize("shift", sorted(EWMA_TABLE))
def test_ewma_monte_carlo_arl_matches_lucas_saccucci(shift: float) -> None:
    # The published table uses the asymptotic limits.
    got = monte_carlo_arl(Ewma(lam=0.1, L=2.814, limits="asymptotic"), shift, RUNS, seed=12)
    assert got.censored == 0
    assert got.arl == pytest.approx(EWMA_TABLE[shift], rel=0.05)


@pytest.mark.parametrize("shift", sorted(CUSUM_TABLE))
def test_markov_chains_match_the_tables(shift: float) -> None:
    assert cusum_arl(0.5, 5.0, shift) == pytest.approx(CUSUM_TABLE[shift], rel=0.01)
    assert ewma_arl(0.1, 2.814, shift) == pytest.approx(EWMA_TABLE[shift], rel=0.01)


def test_exact_ewma_limits_signal_sooner_than_the_asymptotic_ones() -> None:
    # A process already off when the chart starts: the exact limits are narrower early on.
    exact = monte_carlo_arl(Ewma(0.1, 2.814, "exact"), 1.0, RUNS, seed=3)
    asymptotic = monte_carlo_arl(Ewma(0.1, 2.814, "asymptotic"), 1.0, RUNS, seed=3)
    assert exact.arl < 0.9 * asymptotic.arl
    # ...and pay with a slightly shorter in-control ARL (measured 477 vs 500).
    in_control = monte_carlo_arl(Ewma(0.1, 2.814, "exact"), 0.0, RUNS, seed=3)
    assert 430 < in_control.arl < 500


def test_the_configured_defaults_have_the_stated_arl0() -> None:
    # edge/config/monitor.py states these.
    assert cusum_arl(0.5, 12.0) == pytest.approx(518_000, rel=0.02)
    assert cusum_arl(0.5, 12.0, 1.0) == pytest.approx(24.4, rel=0.02)
    assert ewma_arl(0.1, 4.7, states=501) == pytest.approx(552_000, rel=0.02)
    chart = design(0.02, 3.0, 500_000)
    assert 500_000 <= chart.arl0 < 520_000
    assert 100 < bernoulli_arl(0.10, chart.m, chart.limit) < 140  # 2 % → 10 %


def test_one_chart_and_an_array_of_charts_compute_the_same() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((300, 3)) + np.linspace(0, 1.5, 300)[:, None]
    cusum, cusums = TabularCusum(0.5, 4.0), [TabularCusum(0.5, 4.0) for _ in range(3)]
    ewma, ewmas = Ewma(0.2, 2.5, "exact"), [Ewma(0.2, 2.5, "exact") for _ in range(3)]
    cusum.reset((3,))
    ewma.reset((3,))
    for row in data:
        cusum.update(row)
        ewma.update(row)
        for one, other, z in zip(cusums, ewmas, row, strict=True):
            one.update(float(z))
            other.update(float(z))
        assert list(cusum.alarm()) == [bool(c.alarm()) for c in cusums]
        assert np.allclose(cusum.upper, [c.upper for c in cusums])
        assert np.allclose(cusum.lower, [c.lower for c in cusums])
        assert list(cusum.n_upper) == [c.n_upper for c in cusums]
        assert list(ewma.alarm()) == [bool(c.alarm()) for c in ewmas]
        assert np.allclose(ewma.value, [c.value for c in ewmas])
    assert cusum.alarm().any() and ewma.alarm().any()  # the drift was seen


def test_cusum_sums_follow_the_tabular_recursion() -> None:
    chart = TabularCusum(k=0.5, h=3.0)
    for z in (1.0, 1.0, -0.2, 2.0):
        chart.update(z)
    # C+ = 0.5, 1.0, 0.3, 1.8; C- stays 0
    assert chart.upper == pytest.approx(1.8) and chart.lower == 0.0
    assert chart.excursion(ABOVE) == 4 and chart.direction() == IN_CONTROL
    chart.update(2.0)  # C+ = 3.3 > h
    assert chart.direction() == ABOVE
    assert chart.shift(ABOVE) == pytest.approx(0.5 + 3.3 / 5)  # Montgomery eq. 9.5
    for _ in range(5):
        chart.update(-3.0)
    assert chart.upper == 0.0 and chart.direction() == BELOW


def test_cusum_sums_are_capped_so_a_long_shift_unwinds_quickly() -> None:
    chart = TabularCusum(k=0.5, h=5.0, cap=2.0)
    for _ in range(1000):
        chart.update(3.0)  # would pile up to 2500 without the cap
    assert chart.upper == 10.0
    parts = 0
    while not chart.settled(0.5):
        chart.update(0.0)
        parts += 1
    assert parts == 15  # (10 − 2.5) / 0.5


def test_ewma_limits_grow_to_the_asymptote() -> None:
    chart = Ewma(lam=0.1, L=3.0, limits="exact")
    chart.update(0.0)
    assert chart.limit == pytest.approx(3.0 * np.sqrt(0.1 / 1.9 * (1 - 0.9**2)))
    for _ in range(300):
        chart.update(0.0)
    assert chart.limit == pytest.approx(3.0 * np.sqrt(0.1 / 1.9))
    saved = chart.state()
    again = Ewma(lam=0.1, L=3.0)
    again.restore({**saved, "steps": 1})
    assert again.limit == pytest.approx(3.0 * np.sqrt(0.1 / 1.9 * (1 - 0.9**2)))


def test_bernoulli_gamma_and_design() -> None:
    # γ for p0 = 0.01 → p1 = 0.02 (Reynolds & Stoumbos' form)
    assert gamma(0.01, 0.02) == pytest.approx(np.log(0.99 / 0.98) / np.log(0.02 * 0.99 / 0.0098))
    chart = design(0.01, 2.0, 10_000)
    assert chart.m == round(1 / gamma(0.01, 0.02))
    assert chart.arl0 >= 10_000 > bernoulli_arl(0.01, chart.m, chart.limit - 1)
    assert chart.arl1 < chart.arl0 / 10
    with pytest.raises(ValueError, match="ratio"):
        design(0.01, 1.0, 1000)


def _dense_bernoulli_arl(p: float, m: int, limit: int) -> float:
    q = 1 - p
    transitions = np.zeros((limit, limit))
    for s in range(limit):
        transitions[s, max(0, s - 1)] += q
        if s + m - 1 < limit:
            transitions[s, s + m - 1] += p
    return _absorbing_arl(transitions, 0)


@pytest.mark.parametrize(
    ("p", "m", "limit"),
    [(0.02, 35, 150), (0.002, 347, 1500), (0.3, 2, 20), (0.5, 3, 60), (0.1, 35, 300), (0.2, 5, 1)],
)
def test_bernoulli_exact_arl_agrees_with_a_dense_solve(p: float, m: int, limit: int) -> None:
    # covers both solvers: shooting (small p·limit) and the level-crossing recursion
    assert bernoulli_arl(p, m, limit) == pytest.approx(_dense_bernoulli_arl(p, m, limit), rel=1e-6)


@pytest.mark.parametrize("p", [0.05, 0.15])
def test_bernoulli_cusum_monte_carlo_agrees_with_its_chain(p: float) -> None:
    chart = design(0.05, 2.0, 300)

    class OnBernoulli(BernoulliCusum):
        """Feeds itself Bernoulli(p) from the normal draws monte_carlo_arl hands it."""

        def update(self, x: object) -> None:
            super().update(np.asarray(x) < _probit(p))

    got = monte_carlo_arl(OnBernoulli(chart), 0.0, 2000, seed=5)
    assert got.arl == pytest.approx(bernoulli_arl(p, chart.m, chart.limit), rel=0.05)


def _probit(p: float) -> float:
    # the normal quantile, by bisection on the chain module's CDF (precise enough here)
    from edge.monitor.arl import normal_cdf

    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if normal_cdf(np.array(mid)) < p else (lo, mid)
    return (lo + hi) / 2


def test_bernoulli_cusum_steps() -> None:
    chart = BernoulliCusum(design(0.05, 2.0, 300))
    m, limit = chart.design.m, chart.design.limit
    chart.update(1)
    assert chart.value == m - 1 and chart.excursion(ABOVE) == 1
    for _ in range(m - 1):
        chart.update(0)
    assert chart.value == 0 and chart.excursion(ABOVE) == 0 and chart.excursion_rate() is None
    while chart.direction() == IN_CONTROL:
        chart.update(1)
    assert chart.value >= limit
    assert chart.excursion_rate() == 1.0
