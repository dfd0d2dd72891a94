"""`partsight-train`: synthetic data, training, evaluation.

Exit codes: 0 done; 2 the command failed (the one-line error on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge.cli_help import show_defaults
from edge.errors import PartSightError
from edge.images import quiet_opencv
from edge.manifest import FEATURE_GROUPS
from trainer.classify_defaults import (
    DEFAULT_FEATURES,
    DEFAULT_OOD_MARGIN,
    DEFAULT_PASS_PROBABILITY,
)
from trainer.errors import TrainerError
from trainer.threshold import DEFAULT_RULE

if TYPE_CHECKING:
    from trainer.fit import FitConfig

log = logging.getLogger("partsight-train")

EXIT_OK, EXIT_FAILED = 0, 2


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet_opencv()
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except ValidationError as exc:  # one line, not pydantic's multi-line dump
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e['input']!r})"
            for e in exc.errors(include_url=False)
        )
        print(f"partsight-train: error: {exc.title}: {problems}", file=sys.stderr)
        return EXIT_FAILED
    except (TrainerError, PartSightError, ValueError) as exc:
        print(f"partsight-train: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _size(text: str) -> tuple[int, int]:
    """'N' or 'HxW' (height first, like every size option here) → (H, W)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or HxW pixels") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or HxW pixels")
    return (values[0], values[-1])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="partsight-train", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("--no-progress", action="store_true", help="no progress output")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="write a synthetic metal-part dataset (MVTec AD layout)")
    synth.add_argument("out", type=Path)
    synth.add_argument("--count", type=int, default=200, help="training images (test set scales)")
    synth.add_argument(
        "--test-per-type", type=int, help="test images per anomaly type (default: count / 10)"
    )
    synth.add_argument("--size", type=_size, default=(128, 128), help="part view HxW")
    synth.add_argument("--frame", type=_size, help="camera frame HxW (default: the part view)")
    synth.add_argument("--random-pose", action="store_true", help="random position and angle")
    synth.add_argument("--clutter", action="store_true", help="background clutter and shading")
    synth.add_argument("--bit-depth", type=int, choices=(8, 16), default=8)
    synth.add_argument("--color", action="store_true", help="3-channel images")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--drift",
        action="append",
        metavar="KIND:START[-END]:VALUE",
        help="write one run of COUNT parts in line order instead of a dataset, with this drift "
        "(lamp:300:0.01 dims 1 %% per 50 parts, shift:300:3 moves the part 3 px, "
        "defects:300:0.1 steps the defect rate to 10 %%); repeatable",
    )
    synth.add_argument(
        "--defect-rate", type=float, default=0.02, help="a run's defect rate outside drifts"
    )
    synth.set_defaults(func=_synth)

    fit = sub.add_parser("fit", help="train an engine on DIR/train/good and write its bundle")
    fit.add_argument("--data", type=Path, required=True)
    fit.add_argument("--out", type=Path, required=True, help="engine bundle folder to write")
    _training_options(fit)
    fit.set_defaults(func=_fit)

    classify = sub.add_parser(
        "classify",
        help="add a heatmap classifier (defect or nuisance?) to an engine, from labelled images",
    )
    classify.add_argument("--engine", type=Path, required=True, help="the engine bundle to extend")
    classify.add_argument(
        "--labelled", type=Path, required=True,
        help="MVTec-layout folder whose labels.csv gives every image a class: defect, nuisance "
        "(or good: the good parts' appearance)",
    )  # fmt: skip
    classify.add_argument("--out", type=Path, required=True, help="the new engine bundle folder")
    classify.add_argument(
        "--per-type",
        type=int,
        default=20,
        help="labelled images used per anomaly type (at least 1; 5 or more advised)",
    )
    classify.add_argument(
        "--features", choices=tuple(FEATURE_GROUPS), default=DEFAULT_FEATURES,
        help="hu: Hu moments and region descriptors of the anomaly map; residual: descriptors of "
        "each region of the residual once the light change is undone (a part is judged by its "
        "worst region); cnn: the engine's encoder activations pooled over the anomaly; both: hu "
        "and cnn; all: the three (default: %(default)s)",
    )  # fmt: skip
    classify.add_argument("--seed", type=int, default=0, help="draws the images and the MLP")
    classify.add_argument(
        "--pass-probability", type=float, default=DEFAULT_PASS_PROBABILITY,
        help="pass an anomalous part as a nuisance when P(nuisance) >= this (> 0.5)",
    )  # fmt: skip
    classify.add_argument(
        "--ood-margin", type=float, default=DEFAULT_OOD_MARGIN,
        help="never pass a part beyond this multiple of what the labelled nuisances showed "
        "(score, region area, feature distance, envelope excess) (default: %(default)s)",
    )  # fmt: skip
    classify.set_defaults(func=_classify)

    evaluate = sub.add_parser("evaluate", help="metrics and a report of an engine on DIR/test")
    evaluate.add_argument("--engine", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument("--report", type=Path, required=True, help="output folder")
    evaluate.add_argument(
        "--learning-curve", type=Path, metavar="LABELLED_DIR",
        help="for an engine with a classifier: retrain it on 5, 10, 20, 50 images per type of "
        "this labelled folder (several seeds, every feature set) and plot how the "
        "nuisance pass rate and the defect escape rate on DIR/test follow",
    )  # fmt: skip
    evaluate.set_defaults(func=_evaluate)

    bench = sub.add_parser(
        "benchmark",
        help="train the engine and two plain baselines on DIR/train/good, compare them on DIR/test",
    )
    bench.add_argument("--data", type=Path, required=True)
    bench.add_argument(
        "--out", type=Path, help="results folder (default: benchmark-<data folder name>)"
    )
    _training_options(bench)
    bench.set_defaults(func=_benchmark)

    keygen = sub.add_parser("keygen", help="write an Ed25519 key pair for signing engines")
    keygen.add_argument(
        "--out", type=Path, required=True, metavar="KEY",
        help="private key file to create (mode 0600); the public key goes to KEY.pub",
    )  # fmt: skip
    keygen.set_defaults(func=_keygen)

    bundle = sub.add_parser("bundle", help="sign an engine folder into <name>-<version>.tar")
    bundle.add_argument("--engine", type=Path, required=True, metavar="DIR")
    bundle.add_argument("--key", type=Path, required=True, help="private key (mode 0600)")
    bundle.add_argument(
        "--out", type=Path, required=True, metavar="FILE",
        help="a folder to write it into, or the file itself (named <name>-<version>.tar)",
    )  # fmt: skip
    bundle.set_defaults(func=_bundle)
    return show_defaults(parser)


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The options of `fit`, shared by `benchmark` (which trains the engine the same way)."""
    parser.add_argument(
        "--size",
        type=_size,
        help="model input HxW (default: the images' size; 128x128 when they differ in size)",
    )
    parser.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 10, 12, 14, 16),
        help="significant bits of the images' values (default: found from them, e.g. "
        "16-bit images whose values never exceed 4095 hold 12-bit data)",
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--noise", type=float, default=0.1, help="training noise std, [0,1] units")
    parser.add_argument(
        "--patch-prob", type=float, default=0.5,
        help="chance per training image of a pasted patch the model must undo",
    )  # fmt: skip
    parser.add_argument(
        "--anomaly-prob", type=float, default=0.0,
        help="chance per training image of a synthetic anomaly (Perlin blob, specks, a thin "
        "curve) the model must undo",
    )  # fmt: skip
    parser.add_argument(
        "--augment", choices=("none", "flips"), default="none",
        help="flips: mirror training images at random (textures and surfaces; never for "
        "oriented parts)",
    )  # fmt: skip
    parser.add_argument("--width", type=int, default=8, help="channels after the stem")
    parser.add_argument("--depth", type=int, default=4, help="downsampling stages")
    parser.add_argument("--bottleneck", type=int, default=8, help="bottleneck channels")
    parser.add_argument("--blocks", type=int, default=1, help="residual blocks per stage")
    parser.add_argument("--score", choices=("mean", "max", "topk"), default="topk")
    parser.add_argument("--topk-fraction", type=float, default=0.005)
    parser.add_argument("--smoothing", type=float, default=4.0, help="map smoothing sigma, pixels")
    parser.add_argument(
        "--register",
        choices=("auto", "on", "off"),
        default="auto",
        help="align every image to a template (auto: when labels.csv has poses to undo)",
    )
    parser.add_argument(
        "--no-register", dest="register", action="store_const", const="off",
        help="same as --register off (pre-aligned datasets)",
    )  # fmt: skip
    parser.add_argument("--registration-device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--min-confidence", type=float, default=0.5, help="registration confidence to accept"
    )
    parser.add_argument(
        "--mask",
        choices=("none", "auto"),
        default="none",
        help="auto: score only the part, found on the mean aligned training image",
    )
    parser.add_argument(
        "--no-pixel-norm",
        action="store_true",
        help="raw error map (default: normalised by good parts' per-pixel error statistics)",
    )
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument(
        "--threshold-rule",
        default=DEFAULT_RULE,
        help="sigma:K, quantile:Q, or synthetic (F1-optimal against held-out good images with "
        "synthetic anomalies pasted in)",
    )
    parser.add_argument("--val-data", type=Path, help="labelled data for an F1-optimal threshold")
    parser.add_argument(
        "--name", default="engine", help="the engine's name in a station's store (default engine)"
    )
    parser.add_argument(
        "--version",
        default="0.1.0",
        help="its semantic version (default 0.1.0): a retrained engine needs a new one to be "
        "installed beside the old",
    )
    parser.add_argument("--checkpoint", type=Path, help="also save the model as safetensors")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def _synth(args: argparse.Namespace) -> int:
    from trainer.synth import SynthConfig, write_dataset

    config = SynthConfig(  # SynthConfig takes (W, H)
        size=args.size[::-1],
        frame=args.frame[::-1] if args.frame else None,
        random_pose=args.random_pose,
        clutter=args.clutter,
        bit_depth=args.bit_depth,
        color=args.color,
    )
    if args.drift:
        from trainer.synth_drift import Drift, write_run

        drifts = [Drift.parse(text) for text in args.drift]
        run = write_run(
            args.out,
            args.count,
            config,
            args.seed,
            drifts,
            args.defect_rate,
            progress=not args.no_progress,
        )
        print(run)
        return EXIT_OK
    summary = write_dataset(
        args.out, args.count, config, args.seed, progress=not args.no_progress,
        test_per_type=args.test_per_type,
    )  # fmt: skip
    print(summary)
    return EXIT_OK


def _fit_config(args: argparse.Namespace) -> FitConfig:
    from trainer.fit import FitConfig
    from trainer.model import DAEConfig
    from trainer.train import TrainConfig

    return FitConfig(
        size=args.size,
        bit_depth=args.bit_depth,
        model=DAEConfig(
            width=args.width, depth=args.depth, bottleneck=args.bottleneck, blocks=args.blocks
        ),
        train=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            noise_sigma=args.noise,
            patch_prob=args.patch_prob,
            anomaly_prob=args.anomaly_prob,
            augment=args.augment,
            seed=args.seed,
            device=args.device,
        ),
        score_method=args.score,
        topk_fraction=args.topk_fraction,
        smoothing_sigma=args.smoothing,
        per_pixel=not args.no_pixel_norm,
        mask=args.mask,
        register=args.register,
        registration_device=args.registration_device,
        min_confidence=args.min_confidence,
        validation_fraction=args.val_fraction,
        threshold_rule=args.threshold_rule,
        val_data=args.val_data,
        name=args.name,
        version=args.version,
        checkpoint=args.checkpoint,
        show_progress=not args.no_progress,
    )


def _fit(args: argparse.Namespace) -> int:
    from trainer.fit import fit

    result = fit(args.data, args.out, _fit_config(args))
    print(
        f"data: {result.bit_depth.note}; trained on {result.train_images} images, "
        f"validated on {result.val_images}"
    )
    print(
        f"engine: {result.engine}  threshold: {result.threshold:.6g} ({result.threshold_rule})  "
        f"final loss: {result.losses[-1]:.5g}  time: {result.seconds:.0f} s"
    )
    return EXIT_OK


def _classify(args: argparse.Namespace) -> int:
    from trainer.classify import ClassifyConfig, classify

    config = ClassifyConfig(
        per_type=args.per_type,
        features=args.features,
        seed=args.seed,
        pass_probability=args.pass_probability,
        ood_margin=args.ood_margin,
        show_progress=not args.no_progress,
    )
    result = classify(args.engine, args.labelled, args.out, config)
    used = ", ".join(f"{name} {n}" for name, n in result.used.items())
    print(
        f"labelled: {sum(result.used.values())} images ({used}): {result.defects} defects, "
        f"{result.nuisances} nuisances"
    )
    print(
        f"engine: {result.engine} (version {result.version}, {args.features} features)  "
        f"cross-validated: nuisances passed {result.cv_nuisance_pass_rate:.0%}, defects passed "
        f"{result.cv_defect_escape_rate:.0%}  time: {result.seconds:.0f} s"
    )
    return EXIT_OK


def _benchmark(args: argparse.Namespace) -> int:
    from trainer.benchmark import benchmark

    out = args.out or Path(f"benchmark-{args.data.resolve().name}")
    benchmark(args.data, out, _fit_config(args), show_progress=not args.no_progress)
    print((out / "benchmark.md").read_text(), end="")
    print(f"report: {out / 'report.html'}")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from trainer.evaluate import evaluate

    result = evaluate(
        args.engine, args.data, args.report, show_progress=not args.no_progress,
        learning_curve=args.learning_curve,
    )  # fmt: skip
    print(summary_text(result.metrics, result.report))
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    from trainer.package import keygen

    signer = keygen(args.out)
    print(f"key {signer[:16]}: private {args.out} (keep it secret), public {args.out}.pub")
    return EXIT_OK


def _bundle(args: argparse.Namespace) -> int:
    from trainer.package import write_engine_file

    print(write_engine_file(args.engine, args.key, args.out))
    return EXIT_OK


def summary_text(metrics: dict[str, object], report: Path) -> str:
    def num(key: str) -> str:
        value = metrics.get(key)
        return f"{value:.4f}" if isinstance(value, float) else "n/a"

    lines = [
        f"image AUROC {num('image_auroc')}  image AUPR {num('image_aupr')}  "
        f"pixel AUROC {num('pixel_auroc')}  AUPRO {num('aupro')}",
        f"counts: {json.dumps(metrics.get('counts'))}",
    ]
    masks = metrics.get("masks")
    if isinstance(masks, dict):
        line = f"masks: {masks['with_mask']} of {masks['defect_images']} defect images have one"
        missing = masks["missing"]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            line += f"; without a mask: {', '.join(missing[:5])}{more}"
        lines.append(line)
        warnings = masks["warnings"]
        lines.extend(f"mask warning: {warning}" for warning in warnings[:5])
        if len(warnings) > 5:
            lines.append(f"mask warnings: {len(warnings) - 5} more in metrics.json")
    verdicts = metrics.get("verdicts")
    if isinstance(verdicts, dict) and metrics.get("classifier"):
        rates = [
            (label, verdicts.get(key)) for label, key in (
                ("nuisances passed", "nuisance_pass_rate"),
                ("defects passed (escaped)", "defect_escape_rate"),
                ("good parts passed", "good_pass_rate"),
            )
        ]  # fmt: skip
        shown = [f"{label} {value:.1%}" for label, value in rates if isinstance(value, float)]
        if shown:
            lines.append("with the classifier: " + ", ".join(shown))
    lines.append(f"report: {report}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
