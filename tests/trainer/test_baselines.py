"""The benchmark's baselines against cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.baselines import PcaReconstruction, PerPixelGaussian


def _flat(value: int, size: tuple[int, int] = (4, 4)) -> np.ndarray:
    return np.full((size[1], size[0]), value, np.uint8)


def test_per_pixel_gaussian_by_hand() -> None:
    # Good pixels are 51 or 153 (0.2 or 0.6): mean 0.4, sample variance 4·0.2²/3 = 0.16/3.
    model = PerPixelGaussian(size=(4, 4)).fit([_flat(51), _flat(153), _flat(51), _flat(153)])
    test = _flat(102)  # 0.4: exactly the mean everywhere
    test[1, 2] = 255  # 1.0: z² = 0.6² / (0.16/3) = 6.75
    out = model.score(test)
    assert out.score == pytest.approx(6.75, rel=1e-5)  # the maximum of the map
    assert out.anomaly_map.shape == (4, 4)
    assert out.anomaly_map[1, 2] == pytest.approx(6.75, rel=1e-5)
    assert out.anomaly_map[0, 0] == pytest.approx(0.0, abs=1e-9)


def test_per_pixel_gaussian_maps_come_back_at_the_image_size() -> None:
    model = PerPixelGaussian(size=(8, 8)).fit([_flat(v, (30, 20)) for v in (40, 60, 80)])
    out = model.score(_flat(60, (50, 10)))  # another size and aspect than the training images
    assert out.anomaly_map.shape == (10, 50)
    assert out.score == pytest.approx(0.0, abs=1e-6)


def test_pca_reconstruction_by_hand() -> None:
    # Good images lie on the line "a·ones": one component explains them; the mean is 0.4.
    goods = [_flat(v) for v in (51, 102, 153)]
    model = PcaReconstruction(components=1, size=(4, 4)).fit(goods)
    assert model.score(_flat(204)).score == pytest.approx(0.0, abs=1e-10)  # on the line
    off = _flat(102)
    off[0, 0] = 153  # +0.2 at one pixel, off the line
    # The centred residual of d = 0.2·e₀ after removing its projection on ones/4:
    # r = 0.2·e₀ - 0.2/16·ones; squared error 0.2²(15/16)² at pixel 0 and (0.2/16)² elsewhere.
    out = model.score(off)
    expected_map = np.full((4, 4), (0.2 / 16) ** 2)
    expected_map[0, 0] = (0.2 * 15 / 16) ** 2
    np.testing.assert_allclose(out.anomaly_map, expected_map, rtol=1e-4)
    assert out.score == pytest.approx(expected_map.mean(), rel=1e-4)


def test_baselines_need_two_images() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        PerPixelGaussian().fit([_flat(1)])
    with pytest.raises(ValueError, match="at least 2"):
        PcaReconstruction().fit([_flat(1)])
