"""The GPU checks of issue 14, on a real NVIDIA GPU (driven by bench/gpu/check.sh).

(a) registration on the real CUDA target: the registration tests (CUDA case not simulated), then
    CPU vs CUDA poses on N posed 1024x1024 frames (largest translation and angle difference,
    bit-identical count), and the GPU crop (edge.gpu.crop) against the host crop;
(b) GHT time per 1024x1024 frame on CUDA and on this machine's CPU, same frames, same run;
(c) a small engine trained on the GPU (mixed precision) and on the CPU, same data and seed:
    seconds per epoch and test image AUROC of each;
(d) the TensorRT backend if `tensorrt` imports: plan build time, precision, scores vs ONNX
    Runtime, latency; else a plain statement that it was not available;
(e) everything as JSON (--out).

Each step records its own failure ("error") and the others still run. --quick shrinks every
size so the script itself can be exercised without a GPU (NUMBA_ENABLE_CUDASIM=1: the CUDA
kernels run in Numba's simulator; torch trains on the CPU twice): figures from such a run
measure nothing and say so ("simulated": true).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from edge.registration import Registrar, Template  # noqa: E402
from trainer.synth import PartGenerator, SynthConfig  # noqa: E402

KINDS = ("good", "good", "scratch", "dent", "missing_hole", "chipped_edge", "dust", "oil_film")


def log(message: str) -> None:
    print(f"[check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def save(results: dict[str, Any], out: Path) -> None:
    """Written after every step, so a run cut short still leaves what it measured."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")


def step(name: str, results: dict[str, Any], fn: Callable[[], dict[str, Any]], out: Path) -> None:
    started = time.perf_counter()
    log(f"({name}) ...")
    try:
        results[name] = fn()
    except Exception as exc:  # one failed step must not cost the others their figures
        traceback.print_exc()
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    results[name]["seconds"] = round(time.perf_counter() - started, 1)
    log(f"({name}) done in {results[name]['seconds']} s: {json.dumps(results[name])[:400]}")
    save(results, out)


# ------------------------------------------------------------------------------ frames


def frames(n: int, size: int, part: int, seed: int = 7) -> tuple[np.ndarray, list[Any]]:
    """The reference part and n noisy posed frames (image, true pose) as in
    bench/bench_registration.py."""
    config = SynthConfig(
        size=(part, part), frame=(size, size), random_pose=True, clutter=True, occlusion_prob=0.3
    )
    gen = PartGenerator(config, seed)
    rng = np.random.default_rng(seed + 1)
    out = []
    for i in range(n):
        s = gen.render(KINDS[i % len(KINDS)], rng)
        img = s.image.astype(np.float32) + rng.normal(0.0, 4.0, s.image.shape).astype(np.float32)
        out.append((np.clip(img, 0, 255).astype(np.uint8), s.pose))
    canonical = PartGenerator(SynthConfig(size=(part, part)), seed)
    reference = canonical.render("good", np.random.default_rng(100)).image
    return reference, out


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


# ------------------------------------------------------------------------------ (a), (b)


def registration_tests(simulated: bool) -> dict[str, Any]:
    """The registration test files, CUDA case on the real target (without --noconftest the
    suite's fixtures would need the whole project's dependencies)."""
    env = dict(os.environ)
    if not simulated:
        env.pop("NUMBA_ENABLE_CUDASIM", None)
    files = ["tests/edge/test_registration_cuda.py", "tests/edge/test_registration.py"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider",
         "-rs", *files],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=240,
    )  # fmt: skip
    tail = out.stdout.strip().splitlines()[-8:]
    return {"exit_code": out.returncode, "summary": tail[-1] if tail else "", "tail": tail}


def registration(n: int, size: int, part: int, simulated: bool, quick: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"tests": registration_tests(simulated)}
    reference, shots = frames(n, size, part)
    # --quick: a narrow angle range keeps the simulated kernels to seconds (poses are then
    # mostly wrong, but CPU and CUDA must still agree bit for bit)
    template = (
        Template.build(reference, angle_range=(-10.0, 10.0))
        if quick
        else (Template.build(reference))
    )
    cpu = Registrar(template, device="cpu")
    gpu = Registrar(template, device="cuda")
    assert gpu.device == "cuda"
    cpu.warmup()
    gpu.warmup()
    times: dict[str, list[float]] = {"cpu": [], "cuda": []}
    stages: dict[str, list[float]] = {}
    dt, da, dc, same, truth_t, truth_a = [], [], [], 0, [], []
    for i, (img, pose) in enumerate(shots):
        got = {}
        for name, reg in (("cpu", cpu), ("cuda", gpu)):
            t0 = time.perf_counter()
            got[name] = reg.register(img)
            times[name].append((time.perf_counter() - t0) * 1e3)
        for k, v in gpu.last_timings.items():
            stages.setdefault(k, []).append(v * 1e3)
        a, b = got["cpu"].pose, got["cuda"].pose
        dt.append(math.hypot(a.x - b.x, a.y - b.y))
        da.append(angle_diff(a.angle_deg, b.angle_deg))
        dc.append(abs(got["cpu"].confidence - got["cuda"].confidence))
        same += a == b and got["cpu"].confidence == got["cuda"].confidence
        truth_t.append(math.hypot(b.x - pose.x, b.y - pose.y))
        truth_a.append(angle_diff(b.angle_deg, pose.angle_deg))
        if (i + 1) % 50 == 0:
            log(f"  registered {i + 1}/{n} frames on both devices")
    result["pose_agreement"] = {
        "frames": n,
        "frame_px": [size, size],
        "max_translation_diff_px": max(dt),
        "max_angle_diff_deg": max(da),
        "max_confidence_diff": max(dc),
        "identical_poses": int(same),
        "cuda_vs_truth_translation_px_p95": float(np.percentile(truth_t, 95)),
        "cuda_vs_truth_angle_deg_p95": float(np.percentile(truth_a, 95)),
    }
    cpu_ms, cuda_ms = float(np.mean(times["cpu"])), float(np.mean(times["cuda"]))
    result["ght_ms_per_frame"] = {
        "frame_px": [size, size],
        "cpu_mean": cpu_ms,
        "cpu_p50": float(np.median(times["cpu"])),
        "cuda_mean": cuda_ms,
        "cuda_p50": float(np.median(times["cuda"])),
        "cuda_p95": float(np.percentile(times["cuda"], 95)),
        "cpu_over_cuda": cpu_ms / cuda_ms,
        "cuda_stages_mean_ms": {k: float(np.mean(v)) for k, v in stages.items()},
        "goal_cuda_ms": 1.0,
        "cpu_threads": os.cpu_count(),
    }
    result["gpu_crop"] = gpu_crop(template, shots[: min(n, 20)], cpu)
    return result


def gpu_crop(template: Template, shots: list[Any], cpu: Registrar) -> dict[str, Any]:
    """The registered crop cut on the GPU (edge.gpu.crop) vs the host path, grey levels."""
    from edge.backends.base import DeviceInput, ModelOutputs
    from edge.gpu.crop import DeviceCrop
    from edge.gpu.device import CudaDevice
    from edge.manifest import InputSpec
    from edge.preprocess import to_model_input

    device = CudaDevice.open()
    w, h = template.size
    img0 = shots[0][0]
    spec = InputSpec(channels=1, height=h, width=w, source_height=img0.shape[0],
                     source_width=img0.shape[1])  # fmt: skip
    stream = device.stream()

    def unused(n: int) -> ModelOutputs:
        raise AssertionError

    buffer = device.empty((1, 1, h, w), np.float32, stream)
    target = DeviceInput(
        device, stream, buffer, 1, unused, lambda n: device.download(buffer, stream)
    )
    crop = DeviceCrop(target, template.ref, template.size, spec)
    diffs, ms = [], []
    for img, _ in shots:
        reg = cpu.register(img)
        assert reg.aligned is not None
        host = to_model_input(reg.aligned, spec)
        t0 = time.perf_counter()
        crop.stage(0, img, reg.pose)
        got = device.download(target.buffer, stream)
        device.synchronize(stream)
        ms.append((time.perf_counter() - t0) * 1e3)
        diffs.append(float(np.abs(got[0] - host).max()) * 255.0)
    return {"device": str(device), "parts": len(shots), "max_diff_grey_levels": max(diffs),
            "upload_crop_download_ms_mean": float(np.mean(ms))}  # fmt: skip


# ------------------------------------------------------------------------------ (c)


def training(count: int, size: int, epochs: int, work: Path) -> dict[str, Any]:
    import torch

    from trainer.evaluate import evaluate
    from trainer.fit import FitConfig, fit
    from trainer.model import DAEConfig
    from trainer.synth import write_dataset
    from trainer.train import TrainConfig

    data = work / "data"
    write_dataset(data, count, SynthConfig(size=(size, size)), seed=3, progress=False)
    result: dict[str, Any] = {
        "images": count, "size": size, "epochs": epochs,
        "cuda_available": torch.cuda.is_available(),
    }  # fmt: skip
    devices = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]
    for device in devices:
        config = FitConfig(
            model=DAEConfig(width=8, depth=4, bottleneck=8),
            train=TrainConfig(epochs=epochs, batch_size=16, seed=0, device=device),
            name=f"gpu-check-{device}",
            show_progress=False,
        )
        fitted = fit(data, work / f"engine-{device}", config)
        metrics = evaluate(fitted.engine, data, work / f"report-{device}", show_progress=False)
        result[device] = {
            "trained_on": fitted.device,
            "seconds_per_epoch": fitted.train_seconds / epochs,
            "fit_seconds": fitted.seconds,
            "final_loss": fitted.losses[-1],
            "image_auroc": metrics.metrics.get("image_auroc"),
            "engine": str(fitted.engine),
        }
    if "cuda" in result:
        result["epoch_speedup_cpu_over_cuda"] = (
            result["cpu"]["seconds_per_epoch"] / result["cuda"]["seconds_per_epoch"]
        )
        a, b = result["cuda"]["image_auroc"], result["cpu"]["image_auroc"]
        result["auroc_cuda_minus_cpu"] = None if a is None or b is None else a - b
    return result


# ------------------------------------------------------------------------------ (d)


def tensorrt(engine: Path | None, data: Path | None, work: Path) -> dict[str, Any]:
    try:
        import tensorrt as trt
    except ImportError as exc:
        return {"available": False, "reason": f"tensorrt does not import here ({exc})"}
    if engine is None or data is None:
        return {"available": True, "error": "no engine from step (c) to build a plan for"}
    from edge.backends.tensorrt import TensorRtBackend
    from edge.bundle import load_bundle
    from edge.config import TensorRtBackendConfig
    from edge.gpu.device import CudaDevice
    from edge.images import find_images, read_image
    from edge.inspector import Inspection, Inspector, inspect_files

    bundle = load_bundle(engine)
    device = CudaDevice.open()
    config = TensorRtBackendConfig.model_validate({"cache_dir": str(work / "plans")})
    plan = TensorRtBackend(bundle.path(bundle.manifest.model.file), config, device=device)
    fast = Inspector(bundle, plan)
    fast.check_golden()
    ref = Inspector.open(engine)
    paths = list(find_images([data / "test"]).files)
    got = [r for _, r in inspect_files(fast, paths) if isinstance(r, Inspection)]
    want = [r for _, r in inspect_files(ref, paths) if isinstance(r, Inspection)]
    pairs = list(zip(got, want, strict=True))
    rel = [abs((g.score or 0) - (w.score or 0)) / max(abs(w.score or 0), 1e-12) for g, w in pairs]
    image = read_image(paths[0])
    lat: dict[str, float] = {}
    for name, insp in (("tensorrt", fast), ("onnxruntime", ref)):
        for _ in range(5):
            insp.inspect(image)
        ms = []
        for _ in range(50):
            out = insp.inspect(image)
            ms.append(out.latency_ms.get("inference", float("nan")))
        lat[name] = float(np.median(ms))
    backend = fast.backend
    return {
        "available": True,
        "tensorrt_version": str(trt.__version__),
        "device": str(device),
        "precision": backend.precision,
        "plan_build_seconds": plan.build_seconds,
        "images": len(paths),
        "max_score_rel_diff_vs_onnxruntime": max(rel),
        "verdicts_equal": all(g.verdict == w.verdict for g, w in pairs),
        "inference_ms_p50": lat,
    }


# ------------------------------------------------------------------------------ main


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "simulated": os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
    }
    for module in ("numpy", "numba", "cv2", "onnxruntime", "torch", "pydantic"):
        try:
            info[module] = str(__import__(module).__version__)
        except Exception as exc:
            info[module] = f"missing ({exc})"
    try:
        from edge.gpu.device import CudaDevice

        info["gpu"] = str(CudaDevice.open())
    except Exception as exc:
        info["gpu"] = f"none ({exc})"
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", default="abcd", help="which of a, b (with a), c, d to run")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a dry run of the script)")
    args = ap.parse_args()
    if args.quick:
        n, size, part, count, img, epochs = 2, 160, 64, 24, 64, 2
    else:
        n, size, part, count, img, epochs = 300, 1024, 256, 120, 128, 15
    results: dict[str, Any] = {"issue": 14, "quick": args.quick, "complete": False,
                               "environment": environment()}  # fmt: skip
    simulated = results["environment"]["simulated"]
    with tempfile.TemporaryDirectory(prefix="partsight-gpu-") as tmp:
        work = Path(tmp)
        if "a" in args.steps or "b" in args.steps:
            step(
                "a_b_registration",
                results,
                lambda: registration(n, size, part, simulated, args.quick),
                args.out,
            )
        engine = data = None
        if "c" in args.steps:
            step("c_training", results, lambda: training(count, img, epochs, work), args.out)
            trained = results["c_training"].get("cuda") or results["c_training"].get("cpu")
            if trained:
                engine, data = Path(trained["engine"]), work / "data"
        if "d" in args.steps:
            step("d_tensorrt", results, lambda: tensorrt(engine, data, work), args.out)
    results["complete"] = True
    save(results, args.out)
    log(f"(e) written to {args.out}")
    return 0 if not any("error" in v for v in results.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
