"""Human-readable evaluation report: one HTML page with ROC curves, score histograms and
heatmap overlays of the cases an engineer should look at first.

Figures are drawn with matplotlib's object API (``matplotlib.figure.Figure``) rendered by the
Agg backend: nothing is registered with pyplot, so no display is needed, the global backend
is left alone, and a figure is freed as soon as it goes out of scope.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from edge.overlay import overlay_heatmap, to_bgr_uint8
from trainer.metrics import DEFECT, GOOD, NUISANCE, ImageRecord, auroc, roc_curve

logger = logging.getLogger(__name__)

DEFAULT_TITLE = "PartSight evaluation report"
CASES_PER_SECTION = 6
# Beyond this many defect types one histogram row per type stops being readable.
MAX_HISTOGRAM_TYPES = 6
# The colour map of edge.overlay's heatmaps, for matplotlib's colour bars.
_MPL_COLORMAP = "turbo"
_MAP_SAMPLE = 1_000_000  # map pixels sampled to pick the report's common heatmap scale
_DPI = 110


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)  # attach an Agg canvas explicitly: no pyplot, no global state
    fig.savefig(path, dpi=_DPI)
    fig.clear()


def _labels_scores(
    positives: Sequence[ImageRecord], goods: Sequence[ImageRecord]
) -> tuple[np.ndarray, np.ndarray]:
    labels = np.r_[np.ones(len(positives)), np.zeros(len(goods))]
    scores = np.array([r.score for r in [*positives, *goods]], dtype=np.float64)
    return labels, scores


def _by_type(records: Sequence[ImageRecord], cls: str) -> dict[str, list[ImageRecord]]:
    groups: dict[str, list[ImageRecord]] = {}
    for r in records:
        if r.cls == cls:
            groups.setdefault(r.type, []).append(r)
    return dict(sorted(groups.items()))


_ROC_ZOOM_FPR = 0.2  # production runs at low false-alarm rates: show that corner enlarged


def _roc_curves(
    records: Sequence[ImageRecord], goods: Sequence[ImageRecord]
) -> list[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]]:
    """(legend label, fpr, tpr, line style) per defect type (if several), then all defects."""
    groups = _by_type(records, DEFECT)
    named = list(groups.items()) if len(groups) > 1 else []
    named.append(("all defects", [r for rs in groups.values() for r in rs]))
    curves = []
    for name, positives in named:
        labels, scores = _labels_scores(positives, goods)
        fpr, tpr, _ = roc_curve(labels, scores)
        overall = name == "all defects"
        style: dict[str, Any] = (
            {"color": "black", "linewidth": 2.4} if overall else {"linewidth": 1.3, "alpha": 0.85}
        )
        curves.append((f"{name} (AUROC {auroc(labels, scores):.3f})", fpr, tpr, style))
    return curves


def _zoom_floor(curves: Sequence[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]]) -> float:
    """Lowest TPR any curve shows inside the zoom window, rounded down to a tenth."""
    lowest = min(float(np.max(tpr[fpr <= 0.0])) for _, fpr, tpr, _ in curves)
    return max(0.0, np.floor(lowest * 10.0) / 10.0 - 0.05)


def plot_roc(path: Path, records: Sequence[ImageRecord], threshold: float) -> bool:
    """ROC of defects vs good parts, overall and per defect type, with a zoom on low FPR.

    Returns False (and writes nothing) when there are no defects or no good parts.
    """
    goods = [r for r in records if r.cls == GOOD]
    defects = [r for r in records if r.cls == DEFECT]
    if not goods or not defects:
        return False
    curves = _roc_curves(records, goods)
    # The operating point shows where the line actually runs on these curves.
    fpr_at = float(np.mean([r.score >= threshold for r in goods]))
    tpr_at = float(np.mean([r.score >= threshold for r in defects]))
    fig = Figure(figsize=(11.5, 5.2), layout="constrained")
    ax_full, ax_zoom = fig.subplots(1, 2)
    for ax in (ax_full, ax_zoom):
        ax.plot([0, 1], [0, 1], color="0.75", linestyle=":", label="chance")
        for label, fpr, tpr, style in curves:
            ax.plot(fpr, tpr, label=label, **style)
        ax.plot(
            [fpr_at],
            [tpr_at],
            "o",
            color="red",
            markersize=8,
            zorder=5,
            label=f"threshold {threshold:.4g} (FPR {fpr_at:.1%}, recall {tpr_at:.1%})",
        )
        ax.set_xlabel("false positive rate (good parts flagged)")
        ax.set_ylabel("true positive rate (defects caught)")
        ax.grid(alpha=0.3)
    ax_full.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), title="ROC: defects vs good parts")
    ax_zoom.set(
        xlim=(-0.002, _ROC_ZOOM_FPR),
        ylim=(_zoom_floor(curves), 1.01),
        title=f"zoom: false positive rate up to {_ROC_ZOOM_FPR:.0%}",
    )
    ax_full.legend(loc="lower right", fontsize=8)
    _save(fig, path)
    return True


def _histogram_groups(records: Sequence[ImageRecord]) -> list[tuple[str, list[float], str]]:
    """(label, scores, colour) rows: good, defect types (pooled when many), nuisance types."""
    rows: list[tuple[str, list[float], str]] = []
    goods = [r.score for r in records if r.cls == GOOD]
    if goods:
        rows.append(("good", goods, "tab:green"))
    defect_types = _by_type(records, DEFECT)
    if len(defect_types) > MAX_HISTOGRAM_TYPES:
        rows.append(
            ("defect (all types)", [r.score for r in records if r.cls == DEFECT], "tab:red")
        )
    else:
        rows += [
            (f"defect: {t}", [r.score for r in rs], "tab:red") for t, rs in defect_types.items()
        ]
    nuisance_types = _by_type(records, NUISANCE)
    if len(nuisance_types) > MAX_HISTOGRAM_TYPES:
        rows.append(
            ("nuisance (all types)", [r.score for r in records if r.cls == NUISANCE], "tab:orange")
        )
    else:
        rows += [
            (f"nuisance: {t}", [r.score for r in rs], "tab:orange")
            for t, rs in nuisance_types.items()
        ]
    return rows


def plot_histograms(path: Path, records: Sequence[ImageRecord], threshold: float) -> bool:
    """One score histogram per class/type on a shared axis, with the threshold marked."""
    rows = _histogram_groups(records)
    if not rows:
        return False
    all_scores = np.array([s for _, scores, _ in rows for s in scores] + [threshold])
    lo, hi = float(all_scores.min()), float(all_scores.max())
    pad = 0.03 * (hi - lo) if hi > lo else 0.5
    bins = np.linspace(lo - pad, hi + pad, 41)
    fig = Figure(figsize=(7.5, 1.0 + 1.35 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, scores, colour) in zip(axes, rows, strict=True):
        ax.hist(scores, bins=bins, color=colour, alpha=0.75, histtype="stepfilled")
        ax.axvline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=1.3,
            label=f"threshold {threshold:.4g}",
        )
        flagged = float(np.mean(np.asarray(scores) >= threshold))
        ax.set_title(f"{label}: n={len(scores)}, flagged {flagged:.1%}", fontsize=9, loc="left")
        ax.tick_params(labelsize=8)
        ax.set_ylabel("images", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("anomaly score (flagged as NOK at or right of the dashed line)")
    _save(fig, path)
    return True


_CURVE_COLOURS = {
    "hu": "tab:blue", "residual": "tab:green", "cnn": "tab:purple", "both": "tab:orange",
    "all": "black",
}  # fmt: skip


def plot_learning_curve(path: Path, curve: dict[str, Any]) -> bool:
    """Nuisances passed and defects passed (escaped) against labelled images per type, one
    line per feature set, mean ± std over the seeds (trainer.learning_curve's dict)."""
    curves = curve.get("curves") or {}
    if not curves:
        return False
    sizes = curve["sizes"]
    fig = Figure(figsize=(11.5, 4.4), layout="constrained")
    ax_pass, ax_escape = fig.subplots(1, 2)
    panels = (
        (ax_pass, "nuisance_pass", "nuisances passed (higher is better)"),
        (ax_escape, "defect_escape", "defects passed: escaped (lower is better)"),
    )
    for ax, key, title in panels:
        for name, lines in curves.items():
            mean, std = np.array(lines[key]["mean"]), np.array(lines[key]["std"])
            ax.errorbar(sizes, mean, yerr=std, marker="o", capsize=3, label=name,
                        color=_CURVE_COLOURS.get(name))  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.set_xlabel("labelled images per type")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    ax_pass.legend(title="features", fontsize=8)
    fig.suptitle(
        f"classifier learning curve: {len(curve['seeds'])} seeds per point, "
        f"{curve['test_images']} test images, pass probability {curve['pass_probability']:g}, "
        f"OOD margin {curve['ood_margin']:g}",
        fontsize=9,
    )
    _save(fig, path)
    return True


def _display_rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(to_bgr_uint8(image), cv2.COLOR_BGR2RGB)


def plot_case(path: Path, record: ImageRecord, vmax: float, caption: str) -> None:
    """image | heatmap overlay | ground-truth contour, side by side."""
    fig = Figure(figsize=(10.5, 3.6), layout="constrained")
    ax_img, ax_map, ax_gt = fig.subplots(1, 3)
    rgb = _display_rgb(record.image)
    ax_img.imshow(rgb)
    ax_img.set_title("image", fontsize=9)
    overlay = overlay_heatmap(record.image, record.anomaly_map, vmax)
    ax_map.imshow(cv2.cvtColor(overlay, cv2.COLOR_BGR2RGB))
    ax_map.set_title(f"anomaly map (scale 0 to {vmax:.3g})", fontsize=9)
    bar = fig.colorbar(
        ScalarMappable(Normalize(0.0, vmax), _MPL_COLORMAP), ax=ax_map, fraction=0.046, pad=0.02
    )
    bar.ax.tick_params(labelsize=7)
    ax_gt.imshow(rgb)
    if record.cls == GOOD and (record.gt_mask is None or not record.gt_mask.any()):
        ax_gt.set_title("ground truth: good part", fontsize=9)
    elif record.gt_mask is None:
        ax_gt.set_title("ground truth: no mask available", fontsize=9)
    elif not record.gt_mask.any():
        ax_gt.set_title("ground truth: mask is empty", fontsize=9)
    else:
        ax_gt.contour(
            record.gt_mask.astype(np.float32), levels=[0.5], colors=["lime"], linewidths=1.5
        )
        ax_gt.set_title("ground truth (green outline)", fontsize=9)
    for ax in (ax_img, ax_map, ax_gt):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(caption, fontsize=9)
    _save(fig, path)


def heatmap_scale(records: Sequence[ImageRecord]) -> float:
    """One colour scale for every overlay in the report: the 99.9th percentile of map values
    (sampled), so a hot spot looks equally hot on every image."""
    total = sum(r.anomaly_map.size for r in records)
    if total == 0:
        return 1.0
    step = max(1, total // _MAP_SAMPLE)
    sample = np.concatenate([np.ravel(r.anomaly_map)[::step] for r in records])
    scale = float(np.nanpercentile(sample, 99.9)) if sample.size else 0.0
    return scale if scale > 0.0 else 1.0


# ---------------------------------------------------------------------------------------------
# Case selection
# ---------------------------------------------------------------------------------------------

# (key, heading, explanation); the order is the order on the page.
_SECTIONS = (
    (
        "false_alarms",
        "Highest-scoring good parts",
        "False-alarm risks: good parts the model finds most suspicious.",
    ),
    ("misses", "Lowest-scoring defects", "Miss risks: defects the model finds least suspicious."),
    (
        "best",
        "Highest-scoring defects",
        "Clearest detections: where the anomaly map should sit on the marked defect.",
    ),
)


# With a heatmap classifier: its mistakes, first (defects it passed above all).
_CLASSIFIER_SECTIONS = (
    (
        "escaped",
        "Defects passed (escaped)",
        "Anomalous defects the classifier let through: the costliest mistake.",
    ),
    (
        "nuisances_rejected",
        "Nuisances rejected",
        "Anomalous nuisances the classifier (or its out-of-distribution guard) rejected.",
    ),
)


def select_cases(
    records: Sequence[ImageRecord], n: int = CASES_PER_SECTION
) -> dict[str, list[ImageRecord]]:
    goods = sorted((r for r in records if r.cls == GOOD), key=lambda r: r.score, reverse=True)
    defects = sorted((r for r in records if r.cls == DEFECT), key=lambda r: r.score)
    escaped = [r for r in defects[::-1] if r.verdict == "OK" and r.defect_class is not None]
    rejected = [
        r for r in records
        if r.cls == NUISANCE and r.verdict not in ("", "OK") and r.reason != "registration"
    ]  # fmt: skip
    rejected.sort(key=lambda r: r.class_probability or 0.0)
    return {
        "false_alarms": goods[:n], "misses": defects[:n], "best": defects[::-1][:n],
        "escaped": escaped[:n], "nuisances_rejected": rejected[:n],
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f0f0f0; } td.name, th.name { text-align: left; }
figure { margin: 0 0 1.5em; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.notes li { color: #8a5a00; } .explain { color: #555; margin-top: -0.5em; }
"""


def _fmt(value: Any, kind: str = "num") -> str:
    if value is None:
        return "&mdash;"
    if kind == "pct":
        return f"{float(value):.1%}"
    if isinstance(value, bool | int):
        return str(value)
    return f"{float(value):.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(
        f'<th class="name">{h}</th>' if i == 0 else f"<th>{h}</th>" for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="name">{c}</td>' if i == 0 else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary_html(metrics: dict[str, Any]) -> str:
    at = metrics.get("at_threshold") or {}
    best = metrics.get("f1_optimal") or {}
    rows = [
        ("image AUROC (defects vs good)", _fmt(metrics.get("image_auroc"))),
        ("image AUPR (average precision)", _fmt(metrics.get("image_aupr"))),
        ("pixel AUROC", _fmt(metrics.get("pixel_auroc"))),
        ("AUPRO (FPR &le; 0.3)", _fmt(metrics.get("aupro"))),
        ("threshold", _fmt(metrics.get("threshold"))),
        ("recall at threshold (defects caught)", _fmt(at.get("recall"), "pct")),
        ("precision at threshold", _fmt(at.get("precision"), "pct")),
        ("F1 at threshold", _fmt(at.get("f1"))),
        ("accuracy at threshold", _fmt(at.get("accuracy"), "pct")),
        (
            "good parts flagged (false-positive rate)",
            _fmt(metrics.get("good_false_positive_rate"), "pct"),
        ),
        (
            "confusion tp / fp / tn / fn",
            " / ".join(str(at.get(k, "&mdash;")) for k in ("tp", "fp", "tn", "fn")),
        ),
        (
            "F1-optimal threshold (F1)",
            f"{_fmt(best.get('threshold'))} ({_fmt(best.get('f1'))})" if best else "&mdash;",
        ),
    ]
    return _table(("metric", "value"), rows)


def _counts_html(metrics: dict[str, Any]) -> str:
    by_type = metrics.get("counts", {}).get("by_type", {})
    rows = [
        (html.escape(f"{cls} / {typ}"), str(n))
        for cls, types in by_type.items()
        for typ, n in types.items()
    ]
    rows.append(("total", str(metrics.get("counts", {}).get("total", 0))))
    return _table(("class / type", "images"), rows)


def _per_type_html(metrics: dict[str, Any]) -> str:
    per_type = metrics.get("per_type") or {}
    if not per_type:
        return "<p>No defect images in this set.</p>"
    rows = [
        (
            html.escape(typ),
            str(m.get("count")),
            _fmt(m.get("image_auroc")),
            _fmt(m.get("image_aupr")),
            _fmt(m.get("pixel_auroc")),
            _fmt(m.get("aupro")),
            _fmt(m.get("recall"), "pct"),
        )
        for typ, m in per_type.items()
    ]
    header = (
        "defect type",
        "images",
        "image AUROC",
        "image AUPR",
        "pixel AUROC",
        "AUPRO",
        "recall at threshold",
    )
    return _table(header, rows)


def _nuisance_html(metrics: dict[str, Any]) -> str:
    nuisance = metrics.get("nuisance") or {}
    if not nuisance:
        return "<p>No nuisance images in this set.</p>"
    rows = [
        (
            html.escape(typ),
            str(m.get("count")),
            _fmt(m.get("flagged_fraction"), "pct"),
            _fmt(m.get("auroc_vs_good")),
        )
        for typ, m in nuisance.items()
    ]
    return _table(("nuisance type", "images", "flagged at threshold", "AUROC vs good"), rows)


def _verdicts_html(metrics: dict[str, Any]) -> str:
    verdicts = metrics.get("verdicts")
    if not verdicts:
        return "<p>No verdicts recorded.</p>"
    headline = _table(
        ("rate", "value"),
        [
            ("good parts passed", _fmt(verdicts["good_pass_rate"], "pct")),
            ("nuisances passed", _fmt(verdicts["nuisance_pass_rate"], "pct")),
            ("defects passed (escaped)", _fmt(verdicts["defect_escape_rate"], "pct")),
        ],
    )
    rows = [
        (
            html.escape(f"{m['class']}: {typ}"),
            str(m["count"]),
            str(m["OK"]),
            str(m["NOK"]),
            str(m["ERROR"]),
            _fmt(m["passed"], "pct"),
            html.escape(", ".join(f"{k} {n}" for k, n in m["reasons"].items())),
        )
        for typ, m in sorted(verdicts["per_type"].items(), key=lambda kv: (kv[1]["class"], kv[0]))
    ]
    table = _table(("class: type", "images", "OK", "NOK", "ERROR", "passed", "reasons"), rows)
    return headline + table


def _with_classifier(metrics: dict[str, Any]) -> str:
    return " with its heatmap classifier" if metrics.get("classifier") else ""


def _classifier_html(metrics: dict[str, Any]) -> str:
    spec = metrics.get("classifier")
    if not spec:
        return ""
    training = spec["training"]
    rows = [
        ("features", html.escape(str(spec["features"]))),
        ("pass probability (P(nuisance) &ge;)", _fmt(spec["pass_probability"])),
        ("out-of-distribution margin", _fmt(spec["ood"]["margin"])),
        ("labelled images used", html.escape(
            ", ".join(f"{k} {n}" for k, n in training["images"].items()))),
        ("defect / nuisance examples", f"{training['defects']} / {training['nuisances']}"),
        ("temperature (calibration)", _fmt(training["temperature"])),
        ("cross-validated: nuisances passed", _fmt(training["cv_nuisance_pass_rate"], "pct")),
        ("cross-validated: defects passed", _fmt(training["cv_defect_escape_rate"], "pct")),
    ]  # fmt: skip
    return "<h2>Heatmap classifier</h2>" + _table(("setting", "value"), rows)


def _figure_html(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _case_caption(record: ImageRecord, threshold: float) -> str:
    verdict = record.verdict or ("NOK" if record.score >= threshold else "OK")
    said = f"{verdict} {record.reason}".strip()
    if record.defect_class is not None and record.class_probability is not None:
        said += f", classified {record.defect_class} (p {record.class_probability:.2f})"
    return f"{record.file} | {record.cls}: {record.type} | score {record.score:.4g} | {said}"


def _cases_html(
    fig_dir: Path,
    records: Sequence[ImageRecord],
    threshold: float,
    per_section: int,
    classifier: bool,
) -> str:
    vmax = heatmap_scale(records)
    selected = select_cases(records, per_section)
    parts: list[str] = []
    sections = (*_CLASSIFIER_SECTIONS, *_SECTIONS) if classifier else _SECTIONS
    for key, heading, explain in sections:
        cases = selected[key]
        parts.append(f"<h3>{heading}</h3><p class='explain'>{explain}</p>")
        if not cases:
            parts.append("<p>None in this set.</p>")
        for i, record in enumerate(cases):
            name = f"case_{key}_{i:02d}.png"
            caption = _case_caption(record, threshold)
            plot_case(fig_dir / name, record, vmax, caption)
            parts.append(_figure_html(f"figures/{name}", caption))
    return "\n".join(parts)


def _notes_html(metrics: dict[str, Any]) -> str:
    notes = metrics.get("notes") or []
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(str(n))}</li>" for n in notes)
    return f"<h2>Notes</h2><ul class='notes'>{items}</ul>"


def write_report(
    out_dir: Path,
    metrics: dict[str, Any],
    records: list[ImageRecord],
    title: str = DEFAULT_TITLE,
    *,
    cases_per_section: int = CASES_PER_SECTION,
) -> Path:
    """Write ``out_dir/report.html`` and its PNGs under ``out_dir/figures/``; return the page.

    ``metrics`` is the dict from ``trainer.metrics.evaluate_records`` for the same records.
    The page only links its figures by relative path, so the folder can be copied as a whole.
    Each heatmap section shows up to ``cases_per_section`` images (about 0.5 s of drawing each).
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    threshold = float(metrics["threshold"])
    logger.info("writing report for %d images to %s", len(records), out_dir)

    figures: list[str] = []
    if plot_roc(fig_dir / "roc.png", records, threshold):
        figures.append(_figure_html("figures/roc.png", "ROC curves, defects vs good parts"))
    if plot_histograms(fig_dir / "score_histograms.png", records, threshold):
        figures.append(
            _figure_html(
                "figures/score_histograms.png", "Score distributions per class, threshold dashed"
            )
        )
    curve = metrics.get("learning_curve")
    if curve and plot_learning_curve(fig_dir / "learning_curve.png", curve):
        figures.append(
            _figure_html(
                "figures/learning_curve.png",
                "Classifier learning curve: nuisances passed and defects passed against labelled "
                "images per type, per feature set (mean and spread over seeds)",
            )
        )

    created = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">{len(records)} images, threshold {threshold:.4g}, generated {created}</p>
<h2>Summary</h2>{_summary_html(metrics)}
<h2>Verdicts</h2>
<p class="explain">What the line does with each part (good / defect / nuisance &rarr; OK /
NOK), as the engine decides it{_with_classifier(metrics)}.</p>
{_verdicts_html(metrics)}
{_classifier_html(metrics)}
<h2>Per defect type</h2>{_per_type_html(metrics)}
<h2>Nuisances</h2>
<p class="explain">Anomalous but acceptable parts, reported apart from defects.</p>
{_nuisance_html(metrics)}
<h2>Images</h2>{_counts_html(metrics)}
{_notes_html(metrics)}
<h2>Curves and distributions</h2>
{"".join(figures) or "<p>Not enough classes for curves.</p>"}
<h2>Cases to look at</h2>
{_cases_html(fig_dir, records, threshold, cases_per_section, bool(metrics.get("classifier")))}
<h2>Raw metrics</h2>
<details><summary>metrics as JSON</summary><pre>{html.escape(json.dumps(metrics, indent=2))}</pre>
</details>
</body></html>
"""
    report = out_dir / "report.html"
    report.write_text(page, encoding="utf-8")
    return report


# ---------------------------------------------------------------------------------------------
# Benchmark: several methods on one split
# ---------------------------------------------------------------------------------------------


def plot_roc_comparison(path: Path, methods: Sequence[tuple[str, Sequence[ImageRecord]]]) -> bool:
    """One ROC curve (defects vs good) per method on the same axes; False if undefined."""
    fig = Figure(figsize=(6.4, 5.4), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.75", linestyle=":", label="chance")
    drawn = False
    for name, records in methods:
        goods = [r for r in records if r.cls == GOOD]
        defects = [r for r in records if r.cls == DEFECT]
        if not goods or not defects:
            continue
        labels, scores = _labels_scores(defects, goods)
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, linewidth=2, label=f"{name} (AUROC {auroc(labels, scores):.3f})")
        drawn = True
    if not drawn:
        return False
    ax.set(xlabel="false positive rate (good parts flagged)", ylabel="true positive rate")
    ax.set(title="ROC: defects vs good parts, every method", xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)
    return True


def plot_escapes(path: Path, rows: Sequence[dict[str, Any]]) -> bool:
    """Grouped bars: the fraction of each defect type let through at each method's threshold."""
    types = sorted({t for r in rows for t in r["escape_rate_per_type"]})
    if not types:
        return False
    fig = Figure(figsize=(max(6.0, 1.3 * len(types) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(rows)
    for i, row in enumerate(rows):
        values = [row["escape_rate_per_type"].get(t) or 0.0 for t in types]
        ax.bar(np.arange(len(types)) + i * width, values, width, label=row["method"])
    ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2, types)
    ax.set(ylabel="defects let through", ylim=(0, 1.05))
    ax.set(title="Escapes per defect type at each method's own threshold")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def write_benchmark_report(
    path: Path,
    methods: Sequence[tuple[str, Sequence[ImageRecord], dict[str, Any], str]],
    title: str,
) -> Path:
    """One page comparing methods: `methods` holds (name, records, table row of
    trainer.benchmark.MethodResult.row, link to that method's own report)."""
    out_dir = path.parent
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    rows = [row for _, _, row, _ in methods]
    figures = []
    if plot_roc_comparison(fig_dir / "roc_methods.png", [(n, r) for n, r, _, _ in methods]):
        figures.append(_figure_html("figures/roc_methods.png", "ROC curves of every method"))
    if plot_escapes(fig_dir / "escapes.png", rows):
        figures.append(_figure_html("figures/escapes.png", "Escapes per defect type"))

    table = _table(
        ["method", "image AUROC", "image AUPR", "pixel AUROC", "AUPRO", "false rejects",
         "escapes", "fit s", "ms/image", "report"],
        [
            [html.escape(row["method"]), _fmt(row["image_auroc"]), _fmt(row["image_aupr"]),
             _fmt(row["pixel_auroc"]), _fmt(row["aupro"]), _fmt(row["false_reject_rate"], "pct"),
             _fmt(row["escape_rate"], "pct"), f"{row['fit_s']:.0f}", f"{row['inference_ms']:.1f}",
             f'<a href="{html.escape(link)}">heatmaps</a>']
            for (_, _, row, link) in methods
        ],
    )  # fmt: skip
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="explain">Every method learnt from the same good training images and set its threshold
by the same rule on the same held-out good images; false rejects and escapes are at that
threshold.</p>
{table}
{"".join(figures)}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
