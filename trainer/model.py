"""The denoising autoencoder (paper §3.2) and the scoring head that turns it into an engine.

The network is fully convolutional and built from residual blocks: any H×W works, because the
input is padded to the network's stride and the output cropped back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ScoreMethod = Literal["mean", "max", "topk"]


@dataclass(frozen=True)
class DAEConfig:
    in_channels: int = 1
    width: int = 8  # channels after the stem; doubled at every downsampling
    depth: int = 4  # downsampling stages: the stride is 2**depth
    bottleneck: int = 8  # channels at the bottleneck (the information that gets through)
    blocks: int = 1  # residual blocks per stage
    max_width: int = 128

    @property
    def stride(self) -> int:
        return 2**self.depth

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.conv2(F.leaky_relu(self.conv1(x), 0.1)), 0.1)


class DenoisingAutoencoder(nn.Module):
    def __init__(self, config: DAEConfig) -> None:
        super().__init__()
        self.config = config
        widths = [min(config.width * 2**i, config.max_width) for i in range(config.depth + 1)]
        self.stem = nn.Conv2d(config.in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(
                *(ResidualBlock(widths[i]) for _ in range(config.blocks)),
                nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1),
                nn.LeakyReLU(0.1),
            )
            for i in range(config.depth)
        )
        self.squeeze = nn.Conv2d(widths[-1], config.bottleneck, 1)
        self.expand = nn.Conv2d(config.bottleneck, widths[-1], 1)
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(widths[i + 1], widths[i], 3, padding=1),
                nn.LeakyReLU(0.1),
                *(ResidualBlock(widths[i]) for _ in range(config.blocks)),
            )
            for i in reversed(range(config.depth))
        )
        self.head = nn.Conv2d(widths[0], config.in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x)[0]

    @property
    def feature_stride(self) -> int:
        """Stride of the encoder activations `reconstruct` returns: after the second
        downsampling stage (the last one of a shallower network)."""
        return 2 ** min(2, self.config.depth)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction (N, C, H, W), the encoder's activations (N, Cf, ceil(H/s),
        ceil(W/s)) at s = feature_stride: the heatmap classifier's CNN features)."""
        height, width = x.shape[-2:]
        stride = self.config.stride
        pad_h, pad_w = (-height) % stride, (-width) % stride
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        h = F.leaky_relu(self.stem(x), 0.1)
        features = h
        for i, stage in enumerate(self.down):
            h = stage(h)
            if 2 ** (i + 1) == self.feature_stride:
                features = h
        h = self.expand(F.leaky_relu(self.squeeze(h), 0.1))
        h = F.leaky_relu(h, 0.1)
        for stage in self.up:
            h = stage(h)
        out = torch.sigmoid(self.head(h))
        s = self.feature_stride
        return out[..., :height, :width], features[..., : -(-height // s), : -(-width // s)]


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised (1, 1, k, k) Gaussian, k = 2*ceil(3 sigma)+1."""
    radius = max(1, math.ceil(3 * sigma))
    axis = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(axis**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


@dataclass(frozen=True)
class PixelStats:
    """Per-pixel mean and spread of the smoothed error on good parts, (H, W) each.

    Registered parts put every feature at the same pixel, so an edge that always reconstructs
    badly can be told from a defect that does not: the map becomes "how many good-part spreads
    above normal is this pixel", and a scratch on a flat face outranks a crisp outline.
    """

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def from_maps(cls, maps: torch.Tensor, floor_fraction: float = 0.1) -> PixelStats:
        """From (N, 1, H, W) smoothed error maps; the spread is floored at a fraction of its
        average so a pixel that never varied cannot turn noise into a huge score."""
        mean = maps.mean(dim=0)[0]
        std = maps.std(dim=0)[0]
        return cls(mean=mean, std=std.clamp_min(floor_fraction * float(std.mean())))


class ScoringHead(nn.Module):
    """Reconstruction error → anomaly map (smoothed, normalised per pixel, masked) → image
    score, inside the graph so every backend computes the same numbers. The threshold stays
    outside (in the manifest)."""

    kernel: torch.Tensor
    mask: torch.Tensor | None
    pixel_mean: torch.Tensor | None
    pixel_std: torch.Tensor | None

    def __init__(
        self,
        method: ScoreMethod,
        smoothing_sigma: float,
        mask: torch.Tensor | None = None,
        topk_fraction: float = 0.01,
        pixel_stats: PixelStats | None = None,
    ) -> None:
        super().__init__()
        self.method = method
        self.topk_fraction = topk_fraction
        kernel = gaussian_kernel(smoothing_sigma) if smoothing_sigma > 0 else torch.ones(1, 1, 1, 1)
        self.register_buffer("kernel", kernel)
        self.register_buffer("mask", mask[None, None].float() if mask is not None else None)
        # A plain int, so the exported graph has a constant k instead of a data-dependent one.
        self.mask_pixels = int(mask.count_nonzero()) if mask is not None else 0
        if mask is not None and self.mask_pixels == 0:
            raise ValueError("the foreground mask is empty: nothing would ever be scored")
        stats = pixel_stats
        self.register_buffer("pixel_mean", stats.mean[None, None] if stats else None)
        self.register_buffer("pixel_std", stats.std[None, None] if stats else None)

    def error_map(self, x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """Smoothed squared reconstruction error, averaged over channels: (N, 1, H, W)."""
        error = ((x - reconstruction) ** 2).mean(dim=1, keepdim=True)
        radius = self.kernel.shape[-1] // 2
        if radius:
            error = F.conv2d(F.pad(error, (radius,) * 4, mode="reflect"), self.kernel)
        return error

    def forward(
        self, x: torch.Tensor, reconstruction: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        amap = self.error_map(x, reconstruction)
        if self.pixel_mean is not None and self.pixel_std is not None:
            amap = F.relu((amap - self.pixel_mean) / self.pixel_std)
        if self.mask is not None:
            amap = amap * self.mask
        return amap, self._score(amap)

    def _score(self, amap: torch.Tensor) -> torch.Tensor:
        flat = amap.flatten(1)
        if self.method == "max":
            return flat.amax(dim=1)
        if self.method == "topk":
            pixels = self.mask_pixels or flat.shape[1]
            k = max(1, round(self.topk_fraction * pixels))
            return flat.topk(k, dim=1).values.mean(dim=1)
        if self.mask is not None:
            return flat.sum(dim=1) / self.mask_pixels
        return flat.mean(dim=1)


class InspectionModel(nn.Module):
    """What gets exported: image → (reconstruction, anomaly_map, score, features), the
    manifest's DAE_OUTPUTS; features: the encoder's activations (DAE.reconstruct)."""

    def __init__(self, dae: DenoisingAutoencoder, head: ScoringHead) -> None:
        super().__init__()
        self.dae = dae
        self.head = head

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        reconstruction, features = self.dae.reconstruct(x)
        amap, score = self.head(x, reconstruction)
        return reconstruction, amap, score, features
