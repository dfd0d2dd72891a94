"""Fitting the denoising autoencoder on good parts only: Gaussian noise in, clean image out, MSE."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainer.model import DAEConfig, DenoisingAutoencoder
from trainer.progress import progress_bar
from trainer.synthetic_anomalies import paste_anomaly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 8
    learning_rate: float = 3e-3
    noise_sigma: float = 0.1  # std of the Gaussian noise added to inputs, in [0,1] pixel units
    patch_prob: float = 0.5  # chance per image of a pasted patch the model must undo
    anomaly_prob: float = 0.0  # chance per image of a synthetic anomaly (Perlin blob, speck, curve)
    augment: str = "none"  # "flips": random horizontal and vertical flips (textures, not parts)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class TrainResult:
    model: DenoisingAutoencoder
    losses: list[float]  # mean training loss per epoch
    device: str  # "cpu" | "cuda" | "cuda:1" ...
    amp: str | None = None  # mixed precision used on CUDA: "bf16" | "fp16"; None: fp32
    seconds: float = 0.0  # the training loop alone (all epochs)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype on this device: bf16 where the GPU has it (compute capability 8.0+;
    no loss scaling needed), fp16 with a gradient scaler on older GPUs (Volta, Turing, Xavier),
    None (fp32) on the CPU, where mixed precision does not pay."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe(device: torch.device, amp: torch.dtype | None) -> str:
    """e.g. "cuda (NVIDIA H200, bf16 autocast)" or "cpu (fp32)", for logs and progress."""
    if device.type != "cuda":
        return f"{device} (fp32)"
    name = torch.cuda.get_device_name(device)
    return f"{device} ({name}, {'bf16' if amp == torch.bfloat16 else 'fp16'} autocast)"


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU")
    return torch.device(requested)


def paste_patches(
    images: torch.Tensor, probability: float, generator: torch.Generator
) -> torch.Tensor:
    """Copies of `images` where some get a rectangle pasted from elsewhere in the same image.

    Gaussian noise alone teaches the network to copy whatever it sees, a crack included; a patch
    that does not belong (metal over a hole, an edge where there is none) teaches it to put back
    what good parts look like there, so real defects stay in the reconstruction error.
    """
    if probability <= 0:
        return images
    out = images.clone()
    n, _, height, width = images.shape
    draws = torch.rand(n, 7, generator=generator).tolist()
    for i, (use, fh, fw, y0, x0, y1, x1) in enumerate(draws):
        if use >= probability:
            continue
        ph = max(2, int(height * (0.05 + 0.2 * fh)))
        pw = max(2, int(width * (0.05 + 0.2 * fw)))
        sy, sx = int(y0 * (height - ph)), int(x0 * (width - pw))
        dy, dx = int(y1 * (height - ph)), int(x1 * (width - pw))
        out[i, :, dy : dy + ph, dx : dx + pw] = images[i, :, sy : sy + ph, sx : sx + pw]
    return out


def augment(images: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """(N, C, H, W) images with config.augment applied per image: "flips" mirrors each
    horizontally and vertically at random (for textures and surfaces, where a mirrored good
    image is still a good image; never for oriented parts, whose mirror image is a defect)."""
    if config.augment == "none":
        return images
    if config.augment != "flips":
        raise ValueError(f"unknown augmentation {config.augment!r} (none | flips)")
    flips = torch.rand(len(images), 2, generator=generator) < 0.5
    out = images.clone()
    for i, (horizontal, vertical) in enumerate(flips.tolist()):
        dims = [d for d, use in ((2, horizontal), (1, vertical)) if use]  # of one (C, H, W)
        if dims:
            out[i] = images[i].flip(dims=dims)
    return out


def paste_synthetic(
    images: torch.Tensor, probability: float, generator: torch.Generator
) -> torch.Tensor:
    """Copies of (N, C, H, W) `images` where each, with `probability`, carries one synthetic
    anomaly (trainer.synthetic_anomalies: a Perlin blob of foreign texture, a brightness change,
    blur or flat grey, specks, thin curves) that the model must put right: the structured
    corruption of recent denoising-autoencoder work (DRAEM, Zavrtanik et al. 2021)."""
    if probability <= 0:
        return images
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    use = rng.random(len(images)) < probability
    if not use.any():
        return images
    out = images.clone()
    arrays = images.numpy()
    for i in np.flatnonzero(use):
        donor = arrays[(i + 1) % len(arrays)]
        out[i] = torch.from_numpy(paste_anomaly(arrays[i], donor, rng)[0])
    return out


def train_dae(
    images: np.ndarray,
    model_config: DAEConfig,
    config: TrainConfig,
    on_epoch: Callable[[int, float], None] | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Train on float32 (N, C, H, W) images in [0, 1]. A fixed seed gives the same model."""
    if images.ndim != 4 or images.shape[1] != model_config.in_channels or len(images) == 0:
        raise ValueError(
            f"expected (N, {model_config.in_channels}, H, W) images, got {images.shape}"
        )
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    # channels_last lets oneDNN (CPU) and cuDNN pick their fastest convolution kernels.
    layout = torch.channels_last
    model = DenoisingAutoencoder(model_config).to(device)
    model = model.to(memory_format=layout)  # type: ignore[call-overload]  # torch stubs lack it
    data = torch.from_numpy(images)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-5)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    # Mixed precision only where it pays (CUDA); bf16 needs no loss scaling, fp16 does.
    amp = amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    where = describe(device, amp)
    log.info("training on %s: %d epochs of %d images", where, config.epochs, len(images))
    losses: list[float] = []
    bar = progress_bar(
        total=config.epochs, desc=f"training on {where}", unit="epoch", enabled=show_progress
    )
    started = time.perf_counter()
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(data), generator=generator)
        total = 0.0
        for start in range(0, len(data), config.batch_size):
            clean = augment(data[order[start : start + config.batch_size]], config, generator)
            noise = torch.randn(clean.shape, generator=generator) * config.noise_sigma
            corrupted = paste_patches(clean, config.patch_prob, generator)
            corrupted = paste_synthetic(corrupted, config.anomaly_prob, generator)
            clean = clean.to(device, memory_format=layout)
            corrupted = (corrupted + noise).to(device, memory_format=layout)
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                loss = F.mse_loss(model(corrupted).float(), clean)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total += loss.item() * len(clean)
        losses.append(total / len(data))
        bar.update(1, loss=losses[-1])
        if on_epoch:
            on_epoch(epoch, losses[-1])
    bar.close()
    seconds = time.perf_counter() - started
    log.info("trained on %s in %.1f s (%.3f s/epoch)", where, seconds, seconds / config.epochs)
    model.eval()
    model = model.cpu().to(memory_format=torch.contiguous_format)
    precision = None if amp is None else ("bf16" if amp == torch.bfloat16 else "fp16")
    return TrainResult(model, losses, str(device), precision, seconds)
