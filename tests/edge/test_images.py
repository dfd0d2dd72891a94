"""The one image reader and listing (hw.camera.image_file, through edge.images): formats and
suffixes in any case, symbolic links (broken ones named), the size checked from the header before
decoding, and everything passed over named."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import ImageError
from edge.images import IMAGE_SUFFIXES, find_images, read_image
from tests.huge_images import write_huge_png, write_huge_tiff


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


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
def test_every_listed_format_is_found_and_read_with_its_suffix_in_any_case(
    tmp_path: Path, suffix: str
) -> None:
    """Field input 2 (JPEG on the line): a suffix in the list is one the reader really reads,
    whatever its case, and the listing finds it."""
    image = np.tile(np.arange(0, 240, 5, dtype=np.uint8), (40, 1))  # 40 high, 48 wide
    if suffix == ".ppm":  # the colour one of the PNM family
        image = cv2.merge([image, image, image])
    written = tmp_path / f"part{suffix}"
    assert cv2.imwrite(str(written), image), suffix
    upper = written.rename(tmp_path / f"PART{suffix.upper()}")
    assert find_images([tmp_path]).files == (upper,)
    got = read_image(upper)
    assert got.shape == image.shape and got.dtype == np.uint8
    # JPEG and JPEG 2000 are lossy; a smooth ramp survives them within a few grey levels.
    lossy = suffix in {".jpg", ".jpeg", ".jpe", ".jp2"}
    assert np.abs(got.astype(int) - image).max() <= (8 if lossy else 0)


def test_find_images_recurses_sorts_follows_links_and_names_what_it_skips(
    tmp_path: Path,
) -> None:
    root = tmp_path / "x"
    for name in ["y/2.JPG", "1.png", "y/0.bmp", "Z/3.Tif", ".hidden.png", "._1.png"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "4.png").write_bytes(b"")
    (root / "w").symlink_to(tmp_path / "elsewhere")  # a linked folder is walked
    (root / "y" / "back").symlink_to(root)  # a loop is cut, and said so
    listing = find_images([root])
    assert [p.relative_to(root).as_posix() for p in listing.files] == [
        "1.png",
        "Z/3.Tif",
        "w/4.png",
        "y/0.bmp",
        "y/2.JPG",
    ]
    assert [(p.relative_to(root).as_posix(), why) for p, why in listing.skipped] == [
        ("._1.png", "hidden"),  # macOS copies its metadata as ._<name>: not an image
        (".hidden.png", "hidden"),
        ("notes.txt", "not an image file (suffix '.txt')"),
        ("y/back", f"a symbolic link to {root.resolve()}, which is listed already"),
    ]
    flat = find_images([root], recursive=False)
    assert [p.name for p in flat.files] == ["1.png"]
    assert "a folder" in dict((p.name, why) for p, why in flat.skipped).values()


def test_a_broken_symbolic_link_is_listed_and_named_as_such_when_read(tmp_path: Path) -> None:
    """Field input 4: a broken link is not skipped without a word."""
    link = tmp_path / "003.png"
    link.symlink_to(tmp_path / "gone" / "003.png")
    assert find_images([tmp_path]).files == (link,)
    with pytest.raises(ImageError) as info:
        read_image(link)
    assert str(info.value) == (
        f"{link}: broken symbolic link (its target {tmp_path}/gone/003.png does not exist)"
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty file"),
        (
            b"not an image at all",
            "not a decodable image (no image header: corrupt or unsupported format)",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00",
            "not a decodable image (no image header: corrupt or unsupported format)",
        ),
    ],
)
def test_corrupt_files_name_the_file(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: {why}"


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    assert ok
    path = tmp_path / "half.png"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(ImageError, match=r"half.png: not a decodable image \(corrupt"):
        read_image(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nope.png: no such file or folder$"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match=r": a folder, not an image file$"):
        read_image(tmp_path)


def test_a_huge_png_is_refused_from_its_header_before_decoding(tmp_path: Path) -> None:
    """Field input 5: 40000x30000 used to reach OpenCV (CV_IO_MAX_IMAGE_PIXELS traceback). The
    file holds no pixel data: only a reader that never decodes it can say its size."""
    path = write_huge_png(tmp_path / "huge.png", 40000, 30000)
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert info.value.why == (
        "1,200,000,000 pixels (40000 wide, 30000 high), more than the limit of 100,000,000; "
        "refused before decoding"
    )


def test_a_huge_16_bit_tiff_is_refused_from_its_header(tmp_path: Path) -> None:
    """Field input 5: 20000x20000 16-bit TIFF used to be decoded in full before being refused."""
    path = write_huge_tiff(tmp_path / "huge.tif", 20000, 20000)
    with pytest.raises(
        ImageError, match=r"huge.tif: 400,000,000 pixels \(20000 wide, 20000 high\)"
    ):
        read_image(path)


def test_the_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.zeros((48, 64), np.uint8))  # 3072 pixels
    assert read_image(path, max_pixels=3072).shape == (48, 64)
    with pytest.raises(
        ImageError, match=r"a.png: 3,072 pixels \(64 wide, 48 high\), more than the limit of 3,071;"
    ):
        read_image(path, max_pixels=3071)
