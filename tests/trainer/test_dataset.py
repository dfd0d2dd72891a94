from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.dataset import Dataset, binary_mask, mask_problem, read_uniform
from trainer.errors import DatasetError


def make(root: Path, files: dict[str, np.ndarray]) -> Path:
    for name, image in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), image)
    return root


def gray(h: int = 8, w: int = 8) -> np.ndarray:
    return np.full((h, w), 100, np.uint8)


def test_layout_classes_and_masks(tmp_path: Path) -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 255
    make(
        tmp_path,
        {
            "train/good/0.png": gray(),
            "test/good/0.png": gray(),
            "test/scratch/0.png": gray(),
            "test/dust/0.png": gray(),
            "ground_truth/scratch/0_mask.png": mask,
        },
    )
    (tmp_path / "labels.csv").write_text(
        "file,split,class,type\ntest/dust/0.png,test,nuisance,dust\n"
    )
    data = Dataset.load(tmp_path)
    by_file = {i.file: i for i in data.items}
    assert by_file["test/scratch/0.png"].cls == "defect"
    assert by_file["test/dust/0.png"].cls == "nuisance"
    assert by_file["test/dust/0.png"].mask is None
    scratch = data.read_mask(by_file["test/scratch/0.png"], size=(4, 4))
    assert scratch is not None and scratch.shape == (4, 4) and scratch[1, 1] and not scratch[3, 3]
    assert not data.read_mask(by_file["test/good/0.png"]).any()
    assert data.read_mask(by_file["test/dust/0.png"]) is None


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"test/good/0.png": gray()}, "missing folder train/good"),
        ({"train/good/readme.txt": None}, "no training images"),
    ],
)
def test_layout_errors(tmp_path: Path, files: dict, message: str) -> None:
    for name, image in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if image is None:
            (tmp_path / name).write_text("x")
        else:
            cv2.imwrite(str(tmp_path / name), image)
    with pytest.raises(DatasetError, match=message):
        Dataset.load(tmp_path)


def test_a_test_split_alone_loads_when_no_training_is_asked_for(tmp_path: Path) -> None:
    make(tmp_path, {"test/good/0.png": gray(), "test/scratch/0.png": gray()})
    data = Dataset.load(tmp_path, need_test=True, need_train=False)
    assert [i.file for i in data.test] == ["test/good/0.png", "test/scratch/0.png"]
    assert data.train == []
    with pytest.raises(DatasetError, match="missing folder train/good"):
        Dataset.load(tmp_path, need_test=True)


def test_missing_folder_and_missing_test(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        Dataset.load(tmp_path / "nowhere")
    make(tmp_path, {"train/good/0.png": gray()})
    with pytest.raises(DatasetError, match="test"):
        Dataset.load(tmp_path, need_test=True)


def test_mixed_sizes_are_named(tmp_path: Path) -> None:
    make(tmp_path, {"train/good/0.png": gray(), "train/good/1.png": gray(8, 9)})
    data = Dataset.load(tmp_path)
    with pytest.raises(DatasetError, match=r"1.png: 9x8.*differs.*0.png: 8x8"):
        read_uniform(data, data.train)


def test_bad_labels_file(tmp_path: Path) -> None:
    make(tmp_path, {"train/good/0.png": gray()})
    (tmp_path / "labels.csv").write_text("file,split,class,type\nx.png,test,weird,good\n")
    with pytest.raises(DatasetError, match="labels.csv:2"):
        Dataset.load(tmp_path)


# --- field inputs: masks from real pipelines, links, spreadsheets ------------------------------


def _defect_mask() -> np.ndarray:
    mask = np.zeros((64, 64), np.uint8)
    mask[21:35, 23:39] = 255  # 14 x 16 = 224 defect pixels, off JPEG's 8x8 block grid
    return mask


def _jpeg_resaved(mask: np.ndarray) -> np.ndarray:
    """What a pipeline that JPEG-compresses on the way leaves in the PNG it finally writes."""
    ok, data = cv2.imencode(".jpg", mask, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def test_a_mask_resaved_through_jpeg_is_thresholded_at_half_its_range(tmp_path: Path) -> None:
    """Field input 3: read as `> 0`, the halo around a JPEG-compressed mask inflated the defect."""
    halo = _jpeg_resaved(_defect_mask())
    assert np.count_nonzero(halo) > 224 + 100  # the halo is real: `> 0` would count it
    make(
        tmp_path,
        {
            "train/good/0.png": gray(64, 64),
            "test/crack/0.png": gray(64, 64),
            "ground_truth/crack/0_mask.png": halo,
        },
    )
    data = Dataset.load(tmp_path)
    mask = data.read_mask(data.test[0])
    assert mask is not None
    assert np.count_nonzero(mask ^ (_defect_mask() > 0)) == 0  # exactly the drawn defect


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (np.array([[0, 1], [1, 0]], np.uint8), [[False, True], [True, False]]),  # 0/1 labels
        (np.array([[0, 127], [128, 255]], np.uint8), [[False, False], [True, True]]),
        (np.array([[0, 32767], [32768, 65535]], np.uint16), [[False, False], [True, True]]),
        (np.dstack([np.array([[0, 0], [200, 0]], np.uint8)] * 3), [[False, False], [True, False]]),
    ],
)
def test_binary_mask_cuts_at_half_the_range(stored: np.ndarray, expected: list) -> None:
    assert binary_mask(stored).tolist() == expected


def test_masks_are_found_in_any_letter_case(tmp_path: Path) -> None:
    """Field input 3: `005_mask.PNG` was not found, and pixel metrics went null without a word."""
    make(
        tmp_path,
        {
            "train/good/0.png": gray(),
            "test/scratch/005.png": gray(),
            "test/scratch/006.png": gray(),
            "ground_truth/Scratch/005_mask.PNG": _defect_mask()[:8, :8],
            "ground_truth/Scratch/006_MASK.tif": _defect_mask()[:8, :8],
        },
    )
    data = Dataset.load(tmp_path)
    assert [i.mask for i in data.test] == [
        "ground_truth/Scratch/005_mask.PNG",
        "ground_truth/Scratch/006_MASK.tif",
    ]
    assert data.defects_without_mask == []


def test_a_defect_image_without_its_mask_is_named(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "train/good/0.png": gray(),
            "test/scratch/0.png": gray(),
            "test/scratch/1.png": gray(),
            "ground_truth/scratch/0_mask.png": _defect_mask()[:8, :8],
        },
    )
    assert [i.file for i in Dataset.load(tmp_path).defects_without_mask] == ["test/scratch/1.png"]


def test_two_masks_for_one_image_are_an_error(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "train/good/0.png": gray(),
            "test/scratch/0.png": gray(),
            "ground_truth/scratch/0_mask.png": gray(),
            "ground_truth/scratch/0_mask.bmp": gray(),
        },
    )
    with pytest.raises(DatasetError) as info:
        Dataset.load(tmp_path)
    gt = tmp_path / "ground_truth" / "scratch"
    assert str(info.value) == (
        f"0: more than one ground-truth mask ({gt / '0_mask.bmp'}, {gt / '0_mask.png'})"
    )


def test_mask_problems_are_said_in_words() -> None:
    """Field input 3: masks covering almost nothing or almost all (inverted) get a warning."""
    mask = _defect_mask() > 0
    assert mask_problem(mask, (64, 64)) is None
    assert mask_problem(np.zeros((64, 64), bool)) == "is empty: it marks no defect pixel"
    speck = np.zeros((64, 64), bool)
    speck[3, 3:6] = True
    assert mask_problem(speck) == "covers almost nothing (3 pixels)"
    assert mask_problem(~mask) == (
        "covers 95% of the image: inverted (defect drawn black on white)?"
    )
    assert mask_problem(mask, (128, 64, 3)) == (
        "is 64x64 (HxW), its image 128x64: stretched to fit"
    )


def test_labels_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    """Field input 11's sibling: a spreadsheet's CSV starts with a UTF-8 byte-order mark, which
    used to make the first column `\\ufefffile` and every row "need a file and a class"."""
    make(tmp_path, {"train/good/0.png": gray(), "test/dust/0.png": gray()})
    text = "file,split,class,type\ntest/dust/0.png,test,nuisance,dust\n"
    (tmp_path / "labels.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert Dataset.load(tmp_path).test[0].cls == "nuisance"


def test_a_broken_link_in_train_good_is_named_when_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Field input 4: a broken link was skipped without a word; other files are named too."""
    make(tmp_path, {"train/good/0.png": gray(), "train/good/2.png": gray()})
    link = tmp_path / "train" / "good" / "1.png"
    link.symlink_to(tmp_path / "gone.png")
    (tmp_path / "train" / "good" / "Thumbs.db").write_bytes(b"x")
    with caplog.at_level("WARNING", logger="trainer.dataset"):
        data = Dataset.load(tmp_path)
    assert f"{tmp_path}/train/good/Thumbs.db: skipped: not an image file (suffix '.db')" in (
        caplog.messages
    )
    assert [i.file for i in data.train] == [
        "train/good/0.png",
        "train/good/1.png",
        "train/good/2.png",
    ]
    with pytest.raises(DatasetError) as info:
        read_uniform(data, data.train)
    assert str(info.value) == (
        f"{link}: broken symbolic link (its target {tmp_path}/gone.png does not exist)"
    )
