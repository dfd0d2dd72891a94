"""Accuracy on real parts: `partsight-train benchmark` on the magnetic tiles (real camera images,
../shared/datasets/magnetic-tile) with fit's default settings, the engine next to the per-pixel
Gaussian and PCA baselines of the same run, and the threshold rules compared.

Writes the tiles_* entries; the whole benchmark (tables, report with ROC curves and heatmaps)
stays under --work.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import entry, merge_results

from trainer.benchmark import benchmark
from trainer.fit import FitConfig

ROOT = Path(__file__).resolve().parents[1]
TILES = ROOT.parent / "shared" / "datasets" / "magnetic-tile"


def entries(summary: dict[str, object]) -> list[dict[str, object]]:
    """The results-file entries of a benchmark.json summary."""
    rows = {row["method"]: row for row in summary["methods"]}  # type: ignore[attr-defined]
    engine = rows["partsight"]
    note = "magnetic tiles, fit defaults, at the engine's own threshold"
    out = [
        entry("tiles_image_auroc", engine["image_auroc"], "", note=note),
        entry("tiles_pixel_auroc", engine["pixel_auroc"], "", note=note),
        entry("tiles_aupro", engine["aupro"], "", note=note),
        entry("tiles_false_reject_rate", engine["false_reject_rate"], "", note=note),
        entry("tiles_escape_rate", engine["escape_rate"], "", note=note),
        entry("tiles_fit_s", engine["fit_s"], "s", note="partsight-train fit, this CPU"),
        entry("tiles_inference_ms", engine["inference_ms"], "ms", note="per image, file read"),
        entry("tiles_pca_image_auroc", rows["PCA"]["image_auroc"], "", note="same split"),
        entry("tiles_pca_pixel_auroc", rows["PCA"]["pixel_auroc"], "", note="same split"),
    ]
    gauss = rows["per-pixel Gaussian"]
    out.append(entry("tiles_gauss_image_auroc", gauss["image_auroc"], "", note="same split"))
    out.append(entry("tiles_gauss_pixel_auroc", gauss["pixel_auroc"], "", note="same split"))
    for kind, rate in engine["escape_rate_per_type"].items():
        out.append(entry(f"tiles_escape_rate_{kind}", rate, "", note=note))
    for rule in summary["threshold_rules"]:  # type: ignore[attr-defined]
        name = rule["rule"].replace(":", "_").replace(".", "")
        out.append(entry(f"tiles_rule_{name}_false_reject_rate", rule["false_reject_rate"], ""))
        out.append(entry(f"tiles_rule_{name}_escape_rate", rule["escape_rate"], ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--data", type=Path, default=TILES)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench" / "tiles")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"bench_tiles: {args.data} not found (the shared datasets folder)")
    benchmark(args.data, args.work, FitConfig(name="tiles", show_progress=False), False)
    summary = json.loads((args.work / "benchmark.json").read_text())
    print((args.work / "benchmark.md").read_text())
    merge_results(args.out, entries(summary))


if __name__ == "__main__":
    main()
