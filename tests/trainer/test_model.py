from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.checkpoint import load_checkpoint, save_checkpoint
from trainer.errors import ExportError, TrainerError
from trainer.export import check_parity, export_onnx
from trainer.model import (
    DAEConfig,
    DenoisingAutoencoder,
    InspectionModel,
    PixelStats,
    ScoringHead,
)
from trainer.train import TrainConfig, train_dae

SMALL = DAEConfig(width=4, depth=2, bottleneck=4)


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (2, 1, 37, 50), (1, 3, 21, 9)])
def test_any_input_size_comes_back_the_same_size(shape: tuple[int, ...]) -> None:
    model = DenoisingAutoencoder(DAEConfig(in_channels=shape[1], width=4, depth=3, bottleneck=4))
    assert model(torch.rand(shape)).shape == shape


def test_scoring_head_matches_numpy() -> None:
    x, recon = torch.rand(2, 1, 20, 30), torch.rand(2, 1, 20, 30)
    error = ((x - recon) ** 2).numpy()[:, 0]
    mask = torch.zeros(20, 30)
    mask[5:15, 5:25] = 1
    for method in ("mean", "max", "topk"):
        amap, score = ScoringHead(method, 0.0, mask, topk_fraction=0.1)(x, recon)
        masked = error * mask.numpy()
        assert np.allclose(amap.numpy()[:, 0], masked, atol=1e-6)
        flat = masked.reshape(2, -1)
        want = {
            "mean": flat.sum(1) / 200,
            "max": flat.max(1),
            "topk": np.sort(flat, axis=1)[:, -20:].mean(1),
        }[method]
        assert np.allclose(score.numpy(), want, rtol=1e-5), method


def test_smoothing_spreads_a_spike_and_keeps_its_mass() -> None:
    x, recon = torch.zeros(1, 1, 21, 21), torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    amap, _ = ScoringHead("max", 2.0)(x, recon)
    assert amap[0, 0, 10, 10] < 0.1 and amap[0, 0, 10, 12] > 0
    assert amap.sum().item() == pytest.approx(1.0, rel=1e-4)


def test_same_seed_same_model_and_training_reduces_loss() -> None:
    images = np.random.default_rng(0).random((12, 1, 16, 16), dtype=np.float32)
    config = TrainConfig(epochs=3, batch_size=4, seed=5)
    a = train_dae(images, SMALL, config, show_progress=False)
    b = train_dae(images, SMALL, config, show_progress=False)
    for (name, pa), pb in zip(
        a.model.state_dict().items(), b.model.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb), name
    assert a.losses[-1] < a.losses[0]


def test_checkpoint_round_trip_is_safetensors(tmp_path: Path) -> None:
    model = DenoisingAutoencoder(SMALL).eval()
    save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    x = torch.rand(1, 1, 16, 16)
    assert loaded.config == SMALL and torch.equal(loaded(x), model(x))
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(TrainerError, match="not a PartSight checkpoint"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_export_parity_check_catches_a_different_graph(tmp_path: Path) -> None:
    torch.manual_seed(0)
    sample = np.random.default_rng(1).random((2, 1, 24, 24), dtype=np.float32)
    model = InspectionModel(DenoisingAutoencoder(SMALL), ScoringHead("topk", 1.0))
    export_onnx(model, sample, tmp_path / "m.onnx")  # passes its own parity check
    other = InspectionModel(DenoisingAutoencoder(SMALL), ScoringHead("topk", 1.0))
    with pytest.raises(ExportError, match="disagrees"):
        check_parity(other, sample, tmp_path / "m.onnx")


def test_per_pixel_normalisation_ranks_an_unusual_pixel_above_a_noisy_one() -> None:
    # Good parts always reconstruct pixel (0, 0) badly (an edge) and pixel (5, 5) well.
    good = torch.full((20, 1, 8, 8), 0.01)
    good[:, 0, 0, 0] = torch.linspace(0.5, 1.5, 20)
    good[:, 0, 5, 5] = torch.linspace(0.0, 0.02, 20)
    stats = PixelStats.from_maps(good)
    head = ScoringHead("max", 0.0, pixel_stats=stats)
    x = torch.zeros(1, 1, 8, 8)
    recon = torch.zeros(1, 1, 8, 8)
    recon[0, 0, 0, 0] = 1.0  # error 1.0 where good parts err about 1.0: normal
    recon[0, 0, 5, 5] = 0.3  # error 0.09 where good parts err at most 0.02: a defect
    amap, score = head(x, recon)
    assert amap[0, 0, 5, 5] > 5 * max(float(amap[0, 0, 0, 0]), 1e-6)
    assert amap.min() >= 0  # below-normal error is not negative evidence
    assert float(score) == pytest.approx(float(amap.max()))


def test_pasted_patches_change_one_rectangle_per_chosen_image() -> None:
    from trainer.train import paste_patches

    images = torch.rand(6, 1, 32, 32)
    out = paste_patches(images, 1.0, torch.Generator().manual_seed(0))
    again = paste_patches(images, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    changed = (out != images).any(dim=1)  # (N, H, W)
    for i in range(6):
        ys, xs = torch.nonzero(changed[i], as_tuple=True)
        assert len(ys) > 0  # random content differs wherever it moved
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert box <= 32 * 32 * 0.25**2 * 1.01  # one rectangle, at most a quarter side each way
    assert torch.equal(paste_patches(images, 0.0, torch.Generator()), images)
