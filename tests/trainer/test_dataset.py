from pathlib import Path

import cv2
import numpy as np
import pytest

from trainer.dataset import Dataset, read_uniform
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
