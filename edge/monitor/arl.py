"""Average run lengths (ARL): how many parts a chart takes to signal, on average.

ARL₀ (the process in control) is the false-alarm rate: one false alarm every ARL₀ parts per
chart. ARL₁ (shifted) is the detection delay. Three ways to compute them:

- `monte_carlo_arl`: simulation, vectorised over independent runs (each detector steps numpy
  arrays of charts). What the tests compare with the published tables.
- `cusum_arl`, `ewma_arl`: the Markov-chain approximation of Brook & Evans ("An approach to
  the probability distribution of CUSUM run length", Biometrika 59, 1972), as Lucas &
  Saccucci (1990) computed their EWMA tables: the in-control region cut into small intervals,
  the chart's next value falling into each with the normal probabilities. Accurate to a fraction
  of a percent with a few hundred states, and fast where simulation is not (ARL₀ ≈ 10⁵).
- `bernoulli_arl`: exact, for the integer-valued Bernoulli CUSUM (Reynolds & Stoumbos 1999).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

_erfc = np.frompyfunc(math.erfc, 1, 1)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Φ(x) elementwise, float64 (numpy has no erf; math.erfc is exact to double precision)."""
    values = _erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0))
    return 0.5 * np.asarray(values, dtype=np.float64)


class _Chart(Protocol):
    def reset(self, shape: tuple[int, ...] = ()) -> None: ...
    def update(self, z: Any) -> None: ...
    def alarm(self) -> Any: ...


@dataclass(frozen=True)
class RunLengths:
    """The outcome of a Monte-Carlo ARL estimate."""

    arl: float  # mean run length, parts
    stderr: float  # its standard error
    runs: int
    censored: int  # runs that had not signalled by max_steps (counted as max_steps)


def monte_carlo_arl(
    chart: _Chart, shift: float, runs: int, seed: int, max_steps: int = 100_000
) -> RunLengths:
    """Simulate `runs` independent charts on N(shift, 1) data until each signals.

    `chart` is reset to arrays of `runs` charts and stepped with one standard normal draw per
    chart and part (numpy's PCG64, `seed`). Run length = the part at which a chart first
    signals. Runs still quiet after `max_steps` parts are counted as `max_steps` and reported
    as censored (choose max_steps ≫ ARL so there are none)."""
    if runs < 2:
        raise ValueError("need at least 2 runs")
    rng = np.random.default_rng(seed)
    chart.reset((runs,))
    lengths = np.full(runs, max_steps, dtype=np.int64)
    alive = np.ones(runs, dtype=bool)
    for step in range(1, max_steps + 1):
        chart.update(rng.standard_normal(runs) + shift)
        fired = alive & chart.alarm()
        if fired.any():
            lengths[fired] = step
            alive &= ~fired
            if not alive.any():
                break
    values = lengths.astype(np.float64)
    return RunLengths(
        arl=float(values.mean()),
        stderr=float(values.std(ddof=1) / math.sqrt(runs)),
        runs=runs,
        censored=int(alive.sum()),
    )


def _absorbing_arl(transitions: np.ndarray, start: int) -> float:
    """ARL from `start` for a chain whose in-control block is `transitions` (substochastic)."""
    n = transitions.shape[0]
    arl = np.linalg.solve(np.eye(n) - transitions, np.ones(n))
    return float(arl[start])


def one_sided_cusum_arl(k: float, h: float, shift: float, states: int = 300) -> float:
    """ARL of the upper CUSUM C⁺ (signal C⁺ > h) on N(shift, 1) data, Brook & Evans (1972).

    State 0 holds C⁺ ∈ [0, w/2), state i C⁺ ∈ [(i − ½)w, (i + ½)w), w = 2h/(2·states − 1)."""
    w = 2.0 * h / (2 * states - 1)
    centre = np.arange(states) * w
    upper_edge = (np.arange(states) + 0.5) * w  # upper edge of each target state
    # P(next ≤ upper edge of j | now i) = Φ(edge_j − c_i + k − shift)
    cdf = normal_cdf(upper_edge[None, :] - centre[:, None] + k - shift)
    transitions = np.diff(np.concatenate([np.zeros((states, 1)), cdf], axis=1), axis=1)
    return _absorbing_arl(transitions, 0)


def cusum_arl(k: float, h: float, shift: float = 0.0, states: int = 300) -> float:
    """ARL of the two-sided tabular CUSUM (k, h) for a mean shift of `shift` σ.

    Combines the two one-sided charts as 1/ARL = 1/ARL⁺ + 1/ARL⁻ (Montgomery §9.1.2, after
    Van Dobben de Bruyn 1968), which is what Montgomery's Table 9.3 uses."""
    upper = one_sided_cusum_arl(k, h, shift, states)
    lower = one_sided_cusum_arl(k, h, -shift, states)
    return 1.0 / (1.0 / upper + 1.0 / lower)


def ewma_arl(lam: float, L: float, shift: float = 0.0, states: int = 301) -> float:
    """ARL of the EWMA chart (λ, L) with asymptotic limits for a mean shift of `shift` σ,
    by the Markov chain of Lucas & Saccucci (1990): the region between the limits cut into
    `states` (odd) intervals; the chart starts in the middle one."""
    if states % 2 == 0:
        raise ValueError("states must be odd (the chart starts in the middle one)")
    ucl = L * math.sqrt(lam / (2.0 - lam))
    w = 2.0 * ucl / states
    lower_edges = -ucl + np.arange(states) * w
    centres = lower_edges + w / 2
    # next = λ z + (1 − λ) c_i falls in [e_j, e_j + w) ⇔ z ∈ [(e_j − (1−λ) c_i)/λ, …)
    edges = np.concatenate([lower_edges, [ucl]])
    cdf = normal_cdf((edges[None, :] - (1.0 - lam) * centres[:, None]) / lam - shift)
    transitions = np.diff(cdf, axis=1)
    return _absorbing_arl(transitions, states // 2)


def bernoulli_arl(p: float, m: int, limit: int) -> float:
    """Exact ARL of the integer Bernoulli CUSUM S ← max(0, S + m·X − 1), signal S ≥ `limit`,
    started at 0, when P(X = 1) = p (Reynolds & Stoumbos 1999, their Markov chain).

    The chain has `limit` transient states. a(s) = 1 + (1−p)·a(max(0, s−1)) + p·a(s+m−1),
    with a(t) = 0 for t ≥ limit. Solved by shooting from the top (a(s) linear in a(limit−1),
    O(limit)) while that stays well conditioned, else by the level-crossing recursion of
    `_bernoulli_ladder` (O(limit·m), no cancellation)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if m < 2 or limit < 1:
        raise ValueError(f"need m >= 2 and limit >= 1, got m={m}, limit={limit}")
    if limit * -math.log(1.0 - p) < 20.0:  # growth (1/q)^limit < 5e8: shooting loses < 1e-7
        return _bernoulli_shooting(p, m, limit)
    return _bernoulli_ladder(p, m, limit)


def _bernoulli_shooting(p: float, m: int, limit: int) -> float:
    q = 1.0 - p
    # a(s) = alpha[s] + beta[s]·x with x = a(limit − 1); a(t) = 0 beyond the limit.
    alpha = [0.0] * limit
    beta = [0.0] * limit
    beta[limit - 1] = 1.0
    for s in range(limit - 1, 0, -1):
        up = s + m - 1
        fa, fb = (alpha[up], beta[up]) if up < limit else (0.0, 0.0)
        alpha[s - 1] = (alpha[s] - 1.0 - p * fa) / q
        beta[s - 1] = (beta[s] - p * fb) / q
    # the reflecting state: p·a(0) = 1 + p·a(m − 1)
    fa, fb = (alpha[m - 1], beta[m - 1]) if m - 1 < limit else (0.0, 0.0)
    x = (1.0 + p * fa - p * alpha[0]) / (p * (beta[0] - fb))
    return alpha[0] + beta[0] * x


def _bernoulli_ladder(p: float, m: int, limit: int) -> float:
    """The same ARL through level crossings: S goes down one level at a time, so from level s
    the chart either crosses down to s − 1 or is absorbed first. With u(s) the probability of
    being absorbed first and t(s) the expected time either takes, a jump to s + m − 1 must
    cross the levels s + m − 1, …, s in turn, which gives (P = Π_{j=s+1}^{s+m−1} (1 − u(j)),
    R = Σ_j t(j) Π_{i=j+1}^{s+m−1} (1 − u(i))):

        u(s) = p (1 − P) / (1 − p P),   t(s) = (1 + p R) / (1 − p P)

    and, from the reflecting state, ARL = t(0) / u(0). Only sums and products of
    probabilities: stable where shooting is not (large p·limit)."""
    u = np.ones(limit + m)  # levels at or above the limit: absorbed at once
    t = np.zeros(limit + m)
    for s in range(limit - 1, -1, -1):
        stay = 1.0 - u[s + 1 : s + m]  # levels s+1 … s+m−1, lowest first
        # weights W_j = Π_{i>j} (1 − u(i)) within the window: reverse cumulative products
        weights = np.concatenate([np.cumprod(stay[::-1])[::-1][1:], [1.0]])
        crossing = float(np.prod(stay))
        rest = float(weights @ t[s + 1 : s + m])
        u[s] = p * (1.0 - crossing) / (1.0 - p * crossing)
        t[s] = (1.0 + p * rest) / (1.0 - p * crossing)
    return float(t[0] / u[0])
