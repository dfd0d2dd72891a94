from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import ImageError
from edge.images import find_images, read_image


def test_reads_8_and_16_bit_mono_and_colour(tmp_path: Path) -> None:
    mono16 = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    colour = np.zeros((3, 4, 3), np.uint8)
    colour[..., 2] = 200
    cv2.imwrite(str(tmp_path / "a.png"), mono16)
    cv2.imwrite(str(tmp_path / "b.png"), colour)
    a, b = read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png")
    assert a.dtype == np.uint16 and np.array_equal(a, mono16)
    assert b.shape == (3, 4, 3) and b[0, 0, 2] == 200


def test_alpha_is_dropped(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((2, 2, 4), 9, np.uint8))
    assert read_image(tmp_path / "a.png").shape == (2, 2, 3)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_corrupt_files_name_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="broken.png"):
        read_image(path)


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    assert ok
    path = tmp_path / "half.png"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(ImageError, match="half.png"):
        read_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_find_images_recurses_and_sorts(tmp_path: Path) -> None:
    (tmp_path / "x" / "y").mkdir(parents=True)
    for name in ["x/y/2.png", "x/1.png", "x/notes.txt", "x/y/0.bmp"]:
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in find_images([tmp_path / "x"])]
    assert found == ["x/1.png", "x/y/0.bmp", "x/y/2.png"]
    with pytest.raises(ImageError, match="missing"):
        find_images([tmp_path / "missing"])
