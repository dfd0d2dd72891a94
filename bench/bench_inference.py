"""Inference latency per image at the demo size: ONNX Runtime vs torch eager, same model, same run.

Both run the full inspection graph (reconstruction, anomaly map, score) on one image at a time,
with the same thread count, interleaved in rounds so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_file import entry, merge_results

from edge.backends.onnxruntime import OnnxRuntimeBackend
from edge.config import OnnxRuntimeBackendConfig
from trainer.export import export_onnx
from trainer.model import DAEConfig, DenoisingAutoencoder, InspectionModel, ScoringHead

DEMO_SIZE = 128  # the demo engine's input (synthetic parts, 128x128 mono)


def _time_ms(fn, image: np.ndarray, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(image)
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def run(threads: int, rounds: int, repeats: int) -> list[dict[str, object]]:
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = InspectionModel(DenoisingAutoencoder(DAEConfig()), ScoringHead("topk", 2.0)).eval()
    image = np.random.default_rng(0).random((1, 1, DEMO_SIZE, DEMO_SIZE), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, image, path)
        ort = OnnxRuntimeBackend(path, OnnxRuntimeBackendConfig(threads=threads))

        def torch_eager(x: np.ndarray) -> None:
            with torch.inference_mode():
                model(torch.from_numpy(x))

        for fn in (ort.run, torch_eager):  # warm-up
            _time_ms(fn, image, 5)
        ort_ms: list[float] = []
        torch_ms: list[float] = []
        for _ in range(rounds):
            ort_ms += _time_ms(ort.run, image, repeats)
            torch_ms += _time_ms(torch_eager, image, repeats)
    ort_p50, torch_p50 = statistics.median(ort_ms), statistics.median(torch_ms)
    note = f"{DEMO_SIZE}x{DEMO_SIZE} mono, batch 1, {threads} threads, median of {len(ort_ms)}"
    return [
        entry("inference_onnxruntime_ms_per_image", ort_p50, "ms", note=note),
        entry("inference_torch_eager_ms_per_image", torch_p50, "ms", note=note),
        entry("inference_torch_over_onnxruntime", torch_p50 / ort_p50, "x", note="latency ratio"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.json"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    results = run(args.threads, args.rounds, args.repeats)
    for r in results:
        print(f"{r['name']}: {r['value']} {r['unit']}")
    merge_results(args.out, results)


if __name__ == "__main__":
    main()
