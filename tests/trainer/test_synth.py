"""The synthetic metal-part generator: layout, determinism, ground truth, poses, refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.registration.pose import Pose as EdgePose
from edge.registration.pose import template_to_frame
from trainer.synth import (
    DEFECT_TYPES,
    LOCAL_NUISANCE_TYPES,
    MIXED_TYPES,
    NUISANCE_TYPES,
    PartGenerator,
    Pose,
    SynthConfig,
    pose_matrix,
    write_dataset,
)
from trainer.synth_anomaly import VISIBLE

SIZE = (128, 128)


@pytest.fixture(scope="module")
def gen() -> PartGenerator:
    return PartGenerator(SynthConfig(size=SIZE), seed=11)


def _pair(gen: PartGenerator, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A good and an anomalous image drawn from equal generators, and the anomaly's mask."""
    good = gen.render("good", np.random.default_rng(seed))
    bad = gen.render(kind, np.random.default_rng(seed))
    return good.image.astype(int), bad.image.astype(int), bad.mask


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------------------- dataset


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    cfg = SynthConfig(size=(64, 64))
    a = _files(write_dataset(tmp_path / "a", 4, cfg, seed=5, progress=False).path)
    b = _files(write_dataset(tmp_path / "b", 4, cfg, seed=5, progress=False).path)
    c = _files(write_dataset(tmp_path / "c", 4, cfg, seed=6, progress=False).path)
    assert a == b
    assert a["train/good/000.png"] != c["train/good/000.png"]


def test_an_image_does_not_depend_on_how_many_others_are_generated(tmp_path: Path) -> None:
    cfg = SynthConfig(size=(64, 64))
    small = _files(write_dataset(tmp_path / "s", 4, cfg, seed=2, progress=False).path)
    large = _files(write_dataset(tmp_path / "l", 12, cfg, seed=2, progress=False).path)
    for name in (
        "train/good/003.png",
        "test/good/007.png",
        "test/crack/003.png",
        "ground_truth/crack/003_mask.png",
    ):
        assert small[name] == large[name], name


def test_layout_counts_and_labels(tmp_path: Path) -> None:
    count = 40
    summary = write_dataset(
        tmp_path / "d", count, SynthConfig(size=(64, 64)), seed=1, progress=False
    )
    root = summary.path
    anomalies = (*DEFECT_TYPES, *NUISANCE_TYPES)
    assert summary.counts["train"] == {"good": 40}
    assert summary.counts["test"]["good"] == 10
    assert all(summary.counts["test"][t] == 4 for t in anomalies)
    assert summary.total == 40 + 10 + 4 * len(anomalies)
    assert len(list((root / "train/good").glob("*.png"))) == 40
    assert len(list((root / "test/good").glob("*.png"))) == 10
    for t in anomalies:
        assert sorted(p.name for p in (root / "test" / t).glob("*.png")) == [
            f"{i:03d}.png" for i in range(4)
        ]
    gt_types = sorted(p.name for p in (root / "ground_truth").iterdir())
    assert gt_types == sorted((*DEFECT_TYPES, *LOCAL_NUISANCE_TYPES))
    assert "brightness" not in gt_types
    assert (root / "ground_truth/scratch/003_mask.png").is_file()

    with (root / "labels.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["file", "split", "class", "type", "x", "y", "angle_deg"]
        rows = list(reader)
    assert len(rows) == summary.total
    by_file = {r["file"]: r for r in rows}
    assert len(by_file) == len(rows)
    assert all((root / f).is_file() for f in by_file)
    assert by_file["train/good/000.png"]["split"] == "train"
    assert by_file["test/scratch/003.png"] == {
        "file": "test/scratch/003.png",
        "split": "test",
        "class": "defect",
        "type": "scratch",
        "x": "31.500",
        "y": "31.500",
        "angle_deg": "0.000",
    }
    assert by_file["test/dust/000.png"]["class"] == "nuisance"
    assert by_file["test/good/000.png"]["class"] == "good"


def test_minimum_test_counts_and_rewrite_of_a_previous_set(tmp_path: Path) -> None:
    out = tmp_path / "d"
    write_dataset(out, 12, SynthConfig(size=(48, 48)), seed=1, progress=False)
    summary = write_dataset(out, 1, SynthConfig(size=(48, 48)), seed=1, progress=False)
    assert summary.counts["test"]["good"] == 8
    assert summary.counts["test"]["dent"] == 4
    # The larger previous set is gone, not mixed in.
    assert len(list((out / "train/good").glob("*.png"))) == 1
    assert len(list((out / "test/good").glob("*.png"))) == 8


def test_16bit_and_colour_datasets(tmp_path: Path) -> None:
    s16 = write_dataset(
        tmp_path / "a", 2, SynthConfig(size=(48, 48), bit_depth=16), seed=3, progress=False
    )
    img = _read(s16.path / "train/good/000.png")
    assert img.dtype == np.uint16 and img.ndim == 2
    assert img.max() > 20000  # scaled to the full 16-bit range, not 8-bit values in 16 bits
    assert len(np.unique(img)) > 1000
    mask = _read(s16.path / "ground_truth/dent/000_mask.png")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}

    col = write_dataset(
        tmp_path / "b", 2, SynthConfig(size=(48, 48), color=True), seed=3, progress=False
    )
    img = _read(col.path / "test/foreign_material/000.png")
    assert img.dtype == np.uint8 and img.shape == (48, 48, 3)
    assert np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)).max() > 10


# ------------------------------------------------------------------------- ground truth


def test_good_parts_have_empty_masks_and_look_like_parts(gen: PartGenerator) -> None:
    fg = gen.foreground_mask() > 0
    assert fg.shape == (SIZE[1], SIZE[0])
    assert 0.2 < fg.mean() < 0.7
    for seed in range(3):
        s = gen.render("good", np.random.default_rng(seed))
        assert s.cls == "good" and s.type == "good"
        assert s.image.shape == (128, 128) and s.image.dtype == np.uint8
        assert not s.mask.any()
        assert s.pose == Pose(63.5, 63.5, 0.0)
        # The part is clearly brighter than the conveyor.
        assert s.image[fg].mean() > s.image[~fg].mean() + 60


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_defect_masks_are_on_the_part(gen: PartGenerator, kind: str) -> None:
    contours, _ = cv2.findContours(gen.foreground_mask(), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    silhouette = cv2.drawContours(np.zeros(SIZE[::-1], np.uint8), contours, -1, 255, -1)
    near_part = cv2.dilate(silhouette, np.ones((5, 5), np.uint8)) > 0
    for seed in range(6):
        s = gen.render(kind, np.random.default_rng(seed))
        assert s.cls == "defect" and s.type == kind
        m = s.mask > 0
        assert set(np.unique(s.mask)) == {0, 255}
        assert 6 <= m.sum() < 0.08 * m.size, (kind, seed, m.sum())  # visible, not huge
        assert (m & near_part).sum() >= 0.95 * m.sum()


SINGLE_DEFECTS = tuple(k for k in DEFECT_TYPES if k not in MIXED_TYPES)


@pytest.mark.parametrize("kind", (*SINGLE_DEFECTS, *LOCAL_NUISANCE_TYPES))
def test_mask_covers_exactly_the_altered_pixels(gen: PartGenerator, kind: str) -> None:
    for seed in range(5):
        good, bad, mask = _pair(gen, kind, seed)
        diff = np.abs(bad - good)
        inside = mask > 0
        assert inside.any()
        # Nothing outside the mask changed visibly (the mask's own definition), +1 rounding.
        assert diff[~inside].max() <= round(VISIBLE * 255) + 1, (kind, seed)
        core = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
        changed = diff > 6
        # The mask is the change grown by about a pixel, not a loose box around it.
        assert changed[inside].sum() >= 0.2 * inside.sum(), (kind, seed)
        assert changed[core].any()


def test_a_defect_under_a_nuisance_is_a_defect_with_the_defect_s_mask(gen: PartGenerator) -> None:
    for seed in range(5):
        good, oily, mask = _pair(gen, "defect_under_oil", seed)
        inside = mask > 0
        assert gen.render("defect_under_oil", np.random.default_rng(seed)).cls == "defect"
        assert 6 <= inside.sum() < 0.08 * inside.size
        film = (np.abs(oily - good) > round(VISIBLE * 255) + 1) & ~inside
        assert film.sum() > inside.sum(), seed  # the film spreads beyond the defect ...
        ys, xs = np.nonzero(inside)
        fy, fx = np.nonzero(film)
        reach = np.hypot(fx[:, None] - xs[None, :], fy[:, None] - ys[None, :]).min(axis=1)
        assert np.median(reach) < 0.25 * SIZE[0], seed  # ... around it: over the defect
        good, lit, mask = _pair(gen, "defect_with_brightness", seed)
        outside = mask == 0
        assert abs(lit[outside].mean() / good[outside].mean() - 1.0) > 0.07, seed
        assert 6 <= (mask > 0).sum() < 0.08 * mask.size


@pytest.mark.parametrize("kind", ["defect_with_dust", "defect_with_lint"])
def test_a_defect_beside_dirt_is_a_defect_masked_alone_and_the_dirt_lies_on_the_part(
    gen: PartGenerator, kind: str
) -> None:
    for seed in range(5):
        good, dirty, mask = _pair(gen, kind, seed)
        inside = mask > 0
        assert gen.render(kind, np.random.default_rng(seed)).cls == "defect"
        assert 6 <= inside.sum() < 0.08 * inside.size
        dirt = (np.abs(dirty - good) > round(VISIBLE * 255) + 1) & ~inside
        assert dirt.sum() >= 6, (kind, seed)  # the dust or the fibre: changed, not in the mask


def _drop(gen: PartGenerator, kind: str, seeds: range) -> float:
    """Median over seeds of the largest darkening inside the anomaly's mask, grey levels."""
    drops = []
    for seed in seeds:
        good, bad, mask = _pair(gen, kind, seed)
        drops.append(float((good - bad)[mask > 0].max()))
    return float(np.median(drops))


def _extent(gen: PartGenerator, kind: str, seeds: range) -> tuple[float, float]:
    """Median mask area and median length (longest side of its rotated box), pixels."""
    areas, lengths = [], []
    for seed in seeds:
        mask = gen.render(kind, np.random.default_rng(seed)).mask
        areas.append(float((mask > 0).sum()))
        points = cv2.findNonZero(mask)
        lengths.append(max(cv2.minAreaRect(points)[1]))
    return float(np.median(areas)), float(np.median(lengths))


def test_the_nuisances_are_as_confusable_as_the_defects_they_resemble(gen: PartGenerator) -> None:
    seeds = range(12)
    # Dust specks as dark as a dent's floor; lint as thin and long as a scratch.
    assert 0.6 < _drop(gen, "dust", seeds) / _drop(gen, "dent", seeds) < 1.6
    lint_area, lint_length = _extent(gen, "lint", seeds)
    scratch_area, scratch_length = _extent(gen, "scratch", seeds)
    assert 0.6 < lint_length / scratch_length < 1.6
    assert 0.5 < lint_area / scratch_area < 2.0


def test_geometric_defects_change_the_silhouette(gen: PartGenerator) -> None:
    fg = gen.foreground_mask() > 0
    for seed in range(5):
        good, bad, mask = _pair(gen, "chipped_edge", seed)
        inside = mask > 0
        # Material gone: former part pixels in the mask are now as dark as the conveyor.
        dropped = (good - bad > 60) & inside & fg
        assert dropped.sum() >= 6, seed
        good, bad, mask = _pair(gen, "missing_hole", seed)
        inside = mask > 0
        # Hole not drilled: former background inside the mask is now bright material.
        filled = (bad - good > 60) & inside & ~fg
        assert filled.sum() >= 10, seed
        assert (inside & ~fg).sum() >= 0.25 * inside.sum()  # the rest: its chamfer, 1 px


def test_nuisances(gen: PartGenerator) -> None:
    for kind in NUISANCE_TYPES:
        s = gen.render(kind, np.random.default_rng(4))
        assert s.cls == "nuisance" and s.type == kind
        assert s.mask.any() == (kind in LOCAL_NUISANCE_TYPES)
    good, bright, mask = _pair(gen, "brightness", 9)
    assert not mask.any()
    ratio = bright.mean() / good.mean()
    assert abs(ratio - 1.0) > 0.07


def test_defect_size_scales_with_the_view() -> None:
    small = PartGenerator(SynthConfig(size=(128, 128)), seed=4)
    large = PartGenerator(SynthConfig(size=(256, 256)), seed=4)
    area = {}
    for name, g in (("small", small), ("large", large)):
        area[name] = np.mean(
            [(g.render("dent", np.random.default_rng(i)).mask > 0).sum() for i in range(8)]
        )
    assert 2.5 < area["large"] / area["small"] < 6.0


def test_part_is_rotationally_asymmetric(gen: PartGenerator) -> None:
    fg = gen.foreground_mask()
    centre = ((SIZE[0] - 1) / 2, (SIZE[1] - 1) / 2)
    for angle in range(20, 360, 20):
        m = cv2.getRotationMatrix2D(centre, angle, 1.0)
        turned = cv2.warpAffine(fg, m, SIZE, flags=cv2.INTER_NEAREST) > 0
        iou = (turned & (fg > 0)).sum() / (turned | (fg > 0)).sum()
        assert iou < 0.9, angle


# ----------------------------------------------------------------------------------- pose


def test_pose_matrix_matches_the_edge_convention() -> None:
    pose = Pose(300.25, 120.5, 37.0)
    ours = pose_matrix(pose, (128, 96))
    theirs = template_to_frame(EdgePose(pose.x, pose.y, pose.angle_deg), (63.5, 47.5))
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    # Counter-clockwise on screen: a point right of the centre moves up for +90 degrees.
    right = pose_matrix(Pose(300.25, 120.5, 90.0), (128, 96)) @ np.array([63.5 + 10, 47.5, 1])
    np.testing.assert_allclose(right, [300.25, 120.5 - 10], atol=1e-9)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_random_pose_in_a_big_frame_is_where_the_part_is() -> None:
    cfg = SynthConfig(size=SIZE, frame=(512, 512), random_pose=True, clutter=True)
    g = PartGenerator(cfg, seed=21)
    fg = g.foreground_mask()
    angles = []
    for seed in range(6):
        s = g.render("scratch", np.random.default_rng(seed))
        assert s.image.shape == (512, 512) and s.mask.shape == (512, 512)
        p = s.pose
        angles.append(p.angle_deg)
        assert 0.0 <= p.angle_deg < 360.0
        warped = cv2.warpAffine(fg, pose_matrix(p, SIZE), (512, 512), flags=cv2.INTER_NEAREST)
        # Fully inside: the warped part keeps all of its area.
        assert abs(int((warped > 0).sum()) - int((fg > 0).sum())) < 0.02 * (fg > 0).sum()
        bright = _bright_part(s.image, p, g.part.r_max + 3)
        assert _iou(warped > 0, bright) > 0.85, seed
        # A pose turned by 180 degrees does not fit: the pose is unique.
        flipped = Pose(p.x, p.y, p.angle_deg + 180.0)
        wrong = cv2.warpAffine(fg, pose_matrix(flipped, SIZE), (512, 512), flags=cv2.INTER_NEAREST)
        assert _iou(wrong > 0, bright) < 0.8
        # The defect mask moved with the part.
        assert (s.mask > 0).sum() > 0
        assert ((s.mask > 0) & (cv2.dilate(warped, np.ones((5, 5), np.uint8)) > 0)).mean() > 0
    assert np.ptp(angles) > 90


def _bright_part(image: np.ndarray, pose: Pose, radius: float) -> np.ndarray:
    """Pixels brighter than the conveyor near the pose (clutter lies further away)."""
    blur = cv2.GaussianBlur(image, (0, 0), 1.0)
    thr, _ = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    near = np.zeros(image.shape, np.uint8)
    cv2.circle(near, (round(pose.x), round(pose.y)), round(radius), 255, -1)
    return (blur > thr) & (near > 0)


def test_jitter_stays_small_and_inside() -> None:
    g = PartGenerator(
        SynthConfig(size=SIZE, frame=(160, 144), pose_jitter_px=3.0, pose_jitter_deg=2.0), seed=2
    )
    for seed in range(10):
        p = g.render("good", np.random.default_rng(seed)).pose
        assert abs(p.x - 79.5) <= 3.0 and abs(p.y - 71.5) <= 3.0
        assert -2.0 <= p.angle_deg <= 2.0


def test_occlusion_never_hides_the_defect() -> None:
    cfg = SynthConfig(size=SIZE, frame=(320, 320), random_pose=True, occlusion_prob=1.0)
    g = PartGenerator(cfg, seed=8)
    plain = PartGenerator(SynthConfig(size=SIZE, frame=(320, 320), random_pose=True), seed=8)
    occluded = 0
    for seed in range(8):
        s = g.render("dent", np.random.default_rng(seed))
        ref = plain.render("dent", np.random.default_rng(seed))
        assert s.pose == ref.pose
        np.testing.assert_array_equal(s.mask, ref.mask)
        if s.occluded:
            occluded += 1
            assert (s.image != ref.image).sum() > 200
    assert occluded >= 6


def test_colour_and_16bit_samples() -> None:
    g = PartGenerator(SynthConfig(size=(64, 64), color=True, bit_depth=16), seed=1)
    s = g.render("oil_film", np.random.default_rng(0))
    assert s.image.shape == (64, 64, 3) and s.image.dtype == np.uint16
    assert s.mask.shape == (64, 64) and s.mask.dtype == np.uint8
    mono = PartGenerator(SynthConfig(size=(64, 64)), seed=1)
    # Colour is a tint on the same part: same geometry, same foreground.
    np.testing.assert_array_equal(g.foreground_mask(), mono.foreground_mask())


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (16, 16)},
        {"size": (128,)},
        {"size": (128.0, 128)},
        {"frame": (100, 200)},
        {"bit_depth": 12},
        {"occlusion_prob": 1.5},
        {"pose_jitter_px": -1.0},
        {"pose_jitter_deg": float("nan")},
    ],
)
def test_bad_configs_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SynthConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_arguments_are_refused(tmp_path: Path, gen: PartGenerator) -> None:
    cfg = SynthConfig(size=(48, 48))
    with pytest.raises(ValueError, match="count"):
        write_dataset(tmp_path / "a", 0, cfg, seed=1, progress=False)
    with pytest.raises(ValueError, match="seed"):
        write_dataset(tmp_path / "b", 2, cfg, seed=-1, progress=False)
    with pytest.raises(ValueError, match="kind"):
        gen.render("rust", np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        gen.render("good", 3)  # type: ignore[arg-type]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        write_dataset(foreign, 2, cfg, seed=1, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
