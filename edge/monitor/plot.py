"""Pictures of a replay: each metric that alerted, with its chart, its limits and its alerts.

One PNG per metric: on top the metric itself (a rate as its moving average over 50 parts) with
the chart's baseline, below the chart's statistic with its decision limit(s); the part where the
chart places the change's start (dashed), the raise (red) and the clear (green) are marked.
matplotlib comes with the trainer's extra (`pip install 'partsight[trainer]'` or
`pip install matplotlib`); it is imported only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.monitor.metrics import LABELS, LEVELS, MEANS, RATES

_RATES = {m.name for m in RATES}
_LEVELS = {m.name for m in LEVELS}
_TWO_SIDED = {m.name for m in MEANS}


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def check_matplotlib() -> None:
    """Raises PlotUnavailable, saying what to install, when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install matplotlib (or partsight[trainer])"
        ) from None


def plot_alerts(trace: Any, folder: Path) -> list[Path]:
    """Write `<metric>.png` into `folder` for every metric with an alert; returns the files."""
    check_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    alerted = sorted({event.alert.metric for _, event in trace.events})
    for metric in alerted:
        rows = trace.points.get(metric, [])
        if not rows:
            continue
        index = np.array([r[0] for r in rows], dtype=float)
        value = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
        stat = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=float)
        limit = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=float)
        figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
        if metric in _RATES:
            shown = _moving_average(np.nan_to_num(value), 50)
            top.plot(index, 100 * shown, lw=1, label="reject rate, last 50 parts (%)")
        else:
            top.plot(index, value, ".", ms=2, label="value")
        top.set_ylabel(LABELS.get(metric, metric))
        if metric in _LEVELS:
            top.plot(index, stat, "r--", lw=1, label="raise above")
            top.plot(index, limit, "g--", lw=1, label="clear at")
            bottom.set_visible(False)
        else:
            bottom.plot(index, stat, lw=1, label="chart statistic")
            bottom.plot(index, limit, "r--", lw=1, label="decision limit")
            if metric in _TWO_SIDED:
                bottom.plot(index, -limit, "r--", lw=1)
            bottom.set_ylabel("statistic (σ units)" if metric not in _RATES else "B = S/m")
            bottom.legend(loc="upper left", fontsize=8)
        for position, event in trace.events:
            if event.alert.metric != metric:
                continue
            for axis in (top, bottom):
                if event.kind == "raised":
                    axis.axvline(position, color="red", lw=1)
                    start = _position(trace.part_ids, event.alert.started_part)
                    if start is not None:
                        axis.axvline(start, color="red", lw=1, ls=":")
                else:
                    axis.axvline(position, color="green", lw=1)
        raised = [e for _, e in trace.events if e.alert.metric == metric and e.kind == "raised"]
        top.set_title(raised[0].message if raised else metric, fontsize=9)
        top.legend(loc="upper left", fontsize=8)
        bottom.set_xlabel("part (order in the log)")
        figure.tight_layout()
        path = folder / f"{metric}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    sums = np.cumsum(np.r_[0.0, values])
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (sums[1:] - sums[np.maximum(0, np.arange(1, len(values) + 1) - window)]) / counts


def _position(part_ids: list[int], part_id: int | None) -> int | None:
    if part_id is None:
        return None
    index = int(np.searchsorted(np.asarray(part_ids), part_id))
    return index + 1 if index < len(part_ids) else None
