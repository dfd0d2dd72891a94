"""Training corruptions and augmentations, and the synthetic anomalies the threshold rule
`synthetic` scores: deterministic, confined to their mask, never on untouched images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.synthetic_anomalies import anomaly_mask, paste_anomaly, perlin_noise
from trainer.train import TrainConfig, augment, paste_synthetic


def _images(n: int = 6, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(0.2, 0.8, (n, 1, size, size)).astype(np.float32)


def test_perlin_noise_is_smooth_and_bounded() -> None:
    noise = perlin_noise((40, 64), 4, np.random.default_rng(1))
    assert noise.shape == (40, 64) and noise.dtype == np.float32
    assert -1.5 < noise.min() < 0 < noise.max() < 1.5
    # Smooth: neighbours differ far less than the noise's range.
    assert np.abs(np.diff(noise, axis=1)).max() < 0.25 * (noise.max() - noise.min())


def test_a_pasted_anomaly_changes_the_image_inside_its_mask_only() -> None:
    images = _images()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out, mask = paste_anomaly(images[0], images[1], rng)
        assert out.shape == images[0].shape and out.dtype == np.float32
        assert mask.any() and out.min() >= 0.0 and out.max() <= 1.0
        outside = ~(anomaly_mask((32, 32), np.random.default_rng(seed)) > 0)
        np.testing.assert_array_equal(out[0][outside], images[0][0][outside])
        again, _ = paste_anomaly(images[0], images[1], np.random.default_rng(seed))
        np.testing.assert_array_equal(out, again)  # deterministic per generator


def test_paste_synthetic_touches_only_the_images_it_picks() -> None:
    batch = torch.from_numpy(_images(64))
    assert paste_synthetic(batch, 0.0, torch.Generator().manual_seed(0)) is batch
    out = paste_synthetic(batch, 0.5, torch.Generator().manual_seed(0))
    changed = [(out[i] != batch[i]).any().item() for i in range(len(batch))]
    assert 16 < sum(changed) < 48  # about half of them
    same = paste_synthetic(batch, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(out, same)


def test_flips_mirror_whole_images_and_none_leaves_them() -> None:
    batch = torch.from_numpy(_images(32))
    generator = torch.Generator().manual_seed(3)
    assert augment(batch, TrainConfig(), generator) is batch
    flipped = augment(batch, TrainConfig(augment="flips"), generator)
    kinds = set()
    for original, seen in zip(batch, flipped, strict=True):
        for kind, candidate in {
            "none": original,
            "horizontal": original.flip(dims=[2]),
            "vertical": original.flip(dims=[1]),
            "both": original.flip(dims=[1, 2]),
        }.items():
            if torch.equal(seen, candidate):
                kinds.add(kind)
                break
        else:
            pytest.fail("an augmented image is not a mirror image of its original")
    assert kinds == {"none", "horizontal", "vertical", "both"}
    with pytest.raises(ValueError, match="unknown augmentation 'rot90'"):
        augment(batch, TrainConfig(augment="rot90"), generator)
