"""Registration (GHT): pose accuracy and convention, confidence, save/load, warp, bad input.

Frames come from the synthetic part generator (trainer.synth, used here only as a source of
test images with a known pose) and from a small shape drawn with OpenCV, so the pose convention
is also checked against cv2.getRotationMatrix2D directly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.registration import (
    DeviceUnavailable,
    Pose,
    Registrar,
    RegistrationError,
    Template,
    TemplateError,
    template_to_frame,
)
from edge.registration.ght_cpu import CpuVoter
from edge.registration.image import pyramid, to_grey
from edge.registration.registrar import CUT_PENALTY
from trainer.synth import PartGenerator, SynthConfig

SIZE = (256, 256)
FRAME = (1024, 1024)
SEED = 7
TRANSLATION_TOL_PX = 0.5
ROTATION_TOL_DEG = 0.2


def _angle_error(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _errors(found: Pose, true_x: float, true_y: float, true_angle: float) -> tuple[float, float]:
    return math.hypot(found.x - true_x, found.y - true_y), _angle_error(found.angle_deg, true_angle)


def _generator(seed: int = SEED, occlusion: float = 0.0, **kw: Any) -> PartGenerator:
    config = SynthConfig(
        size=SIZE, frame=FRAME, random_pose=True, clutter=True, occlusion_prob=occlusion, **kw
    )
    return PartGenerator(config, seed)


def _canonical(seed: int = SEED, **kw: Any) -> np.ndarray:
    """A good part in its canonical view: the reference image a template is built from."""
    gen = PartGenerator(SynthConfig(size=SIZE, **kw), seed)
    return gen.render("good", np.random.default_rng(100)).image


def _noisy(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Extra sensor noise on top of the generator's own."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def _without_part(image: np.ndarray, pose_x: float, pose_y: float, r: int = 140) -> np.ndarray:
    """The frame with the part's neighbourhood covered by belt from the far side of the frame."""
    out = image.copy()
    h, w = image.shape[:2]
    x0, y0 = max(int(pose_x) - r, 0), max(int(pose_y) - r, 0)
    x1, y1 = min(int(pose_x) + r, w), min(int(pose_y) + r, h)
    sx = 0 if x0 > w // 2 else w - (x1 - x0)
    sy = 0 if y0 > h // 2 else h - (y1 - y0)
    out[y0:y1, x0:x1] = image[sy : sy + (y1 - y0), sx : sx + (x1 - x0)]
    return out


def _shape(size: int = 160) -> np.ndarray:
    """An asymmetric plate with a hole and a pocket, drawn with OpenCV (no generator involved)."""
    s = size / 160.0
    img = np.full((size, size), 50, np.uint8)
    outline = np.array([[25, 38], [125, 25], [138, 75], [112, 131], [56, 138], [31, 94]]) * s
    cv2.fillPoly(img, [outline.astype(np.int32)], 190, lineType=cv2.LINE_AA)
    cv2.circle(img, (int(69 * s), int(69 * s)), int(16 * s), 50, -1, cv2.LINE_AA)
    cv2.rectangle(img, (int(94 * s), int(88 * s)), (int(110 * s), int(110 * s)), 110, -1)
    return img


def _place(
    template: np.ndarray,
    x: float,
    y: float,
    angle: float,
    frame: tuple[int, int],
    scale: float = 1.0,
) -> np.ndarray:
    """``template`` put into a frame with OpenCV's own rotation: its centre at (x, y), turned by
    ``angle`` (cv2.getRotationMatrix2D's sign) and scaled."""
    h, w = template.shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[:, 2] += (x - centre[0], y - centre[1])
    return cv2.warpAffine(template, m, frame, flags=cv2.INTER_LINEAR, borderValue=50)


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.build(_canonical())


@pytest.fixture(scope="module")
def registrar(template: Template) -> Registrar:
    reg = Registrar(template)
    reg.warmup()
    return reg


# ------------------------------------------------------------------------------ accuracy


def test_pose_accuracy_on_noisy_random_frames(registrar: Registrar) -> None:
    gen = _generator(occlusion=0.5)
    rng = np.random.default_rng(21)
    kinds = ["good", "scratch", "good", "chipped_edge", "missing_hole", "good", "dent", "good"]
    kinds += ["crack", "oil_film", "good", "foreign_material"]
    trans, rot, occluded, defective = [], [], 0, 0
    for i, kind in enumerate(kinds):
        sample = gen.render(kind, rng)
        frame = _noisy(sample.image, 4.0, i)
        reg = registrar.register(frame)
        et, ea = _errors(reg.pose, sample.pose.x, sample.pose.y, sample.pose.angle_deg)
        trans.append(et)
        rot.append(ea)
        occluded += sample.occluded
        defective += sample.cls == "defect"
        if not sample.occluded:  # a hidden part may rightly fall below the threshold
            assert reg.accepted, (kind, reg.confidence)
    assert occluded >= 1 and defective >= 1  # the sample covers both
    assert np.percentile(trans, 95) <= TRANSLATION_TOL_PX, trans
    assert np.percentile(rot, 95) <= ROTATION_TOL_DEG, rot


def test_pose_convention_matches_opencv_rotation() -> None:
    """A template point lands where cv2.getRotationMatrix2D puts it: CCW on screen, about the
    window centre ((w-1)/2, (h-1)/2)."""
    shape = _shape()
    reg = Registrar(Template.build(shape))
    for x, y, angle in [(300.0, 200.0, 30.0), (211.3, 287.6, 123.4), (250.0, 250.0, 301.7)]:
        found = reg.register(_place(shape, x, y, angle, (512, 512))).pose
        et, ea = _errors(found, x, y, angle)
        assert et < 0.3 and ea < 0.1, (found, x, y, angle)
        # and the matrix maps the template's corner like OpenCV's does
        m = cv2.getRotationMatrix2D((79.5, 79.5), angle, 1.0)
        m[:, 2] += np.array([x - 79.5, y - 79.5])
        ours = template_to_frame(Pose(x, y, angle), (79.5, 79.5))
        np.testing.assert_allclose(ours, m, atol=1e-9)


def test_same_size_frame_gives_centre_and_zero_angle() -> None:
    """Pose-aligned data: the frame is the canonical view itself, or jittered a little."""
    reference = _canonical()
    template = Template.build(reference, angle_range=(-10.0, 10.0))
    reg = Registrar(template)
    found = reg.register(reference)
    assert _errors(found.pose, 127.5, 127.5, 0.0)[0] < 0.05
    assert abs(found.pose.angle_deg) < 0.02 and found.confidence > 0.95
    jittered = PartGenerator(SynthConfig(size=SIZE, pose_jitter_px=6, pose_jitter_deg=4), SEED)
    rng = np.random.default_rng(4)
    for _ in range(3):
        sample = jittered.render("good", rng)
        found = reg.register(sample.image)
        et, ea = _errors(found.pose, sample.pose.x, sample.pose.y, sample.pose.angle_deg)
        assert et < TRANSLATION_TOL_PX and ea < ROTATION_TOL_DEG


def test_scale_range_finds_the_scale() -> None:
    shape = _shape()
    template = Template.build(shape, scale_range=(0.95, 1.05), scale_step=0.025)
    found = Registrar(template).register(_place(shape, 260.0, 240.0, 77.0, (512, 512), 1.03))
    assert abs(found.pose.scale - 1.03) < 0.003
    assert _errors(found.pose, 260.0, 240.0, 77.0)[0] < 0.3


def test_uint16_colour_and_single_channel_frames(template: Template) -> None:
    reg = Registrar(template)
    sample = _generator(seed=SEED).render("good", np.random.default_rng(3))
    base = reg.register(sample.image)
    variants = {
        "uint16": sample.image.astype(np.uint16) * 257,
        "bgr": cv2.cvtColor(sample.image, cv2.COLOR_GRAY2BGR),
        "h,w,1": sample.image[:, :, None],
    }
    for name, frame in variants.items():
        got = reg.register(frame)
        assert got.aligned.dtype == frame.dtype and got.aligned.ndim == frame.ndim, name
        assert got.aligned.shape[:2] == (SIZE[1], SIZE[0]), name
        assert _errors(got.pose, base.pose.x, base.pose.y, base.pose.angle_deg)[0] < 0.05, name


# ---------------------------------------------------------------------------- confidence


def test_low_confidence_without_the_part(registrar: Registrar) -> None:
    gen = _generator()
    rng = np.random.default_rng(8)
    for _ in range(3):
        sample = gen.render("good", rng)
        reg = registrar.register(_without_part(sample.image, sample.pose.x, sample.pose.y))
        assert reg.confidence < 0.2 and not reg.accepted
    flat = np.full((600, 800), 40, np.uint8)
    assert registrar.register(flat).confidence == 0.0


def test_low_confidence_for_a_different_part(registrar: Registrar) -> None:
    other = _generator(seed=SEED + 1000)
    rng = np.random.default_rng(9)
    for _ in range(3):
        reg = registrar.register(other.render("good", rng).image)
        assert reg.confidence < registrar.min_confidence, reg.confidence


def test_low_confidence_for_a_part_cut_by_the_border(registrar: Registrar) -> None:
    sample = _generator().render("good", np.random.default_rng(10))
    for keep in (40, 60):  # part centre this far inside the left border: material is cut off
        x0 = int(sample.pose.x) - keep
        if x0 < 0:
            continue
        reg = registrar.register(sample.image[:, x0 : x0 + 600])
        assert reg.in_view < 0.99
        assert reg.confidence <= CUT_PENALTY < registrar.min_confidence and not reg.accepted


# ----------------------------------------------------------------------------- save/load


def test_save_load_round_trip_gives_identical_registration(
    template: Template, registrar: Registrar, tmp_path: Path
) -> None:
    names = template.save(tmp_path / "tpl")
    assert sorted(names) == sorted(p.name for p in (tmp_path / "tpl").iterdir())
    for name in names:
        if name.endswith(".npy"):
            np.load(tmp_path / "tpl" / name, allow_pickle=False)
    loaded = Template.load(tmp_path / "tpl")
    frame = _generator().render("scratch", np.random.default_rng(11)).image
    a = registrar.register(frame)
    b = Registrar(loaded).register(frame)
    assert a.pose == b.pose and a.confidence == b.confidence
    assert np.array_equal(a.aligned, b.aligned) and np.array_equal(a.mask, b.mask)


def test_load_refuses_missing_or_corrupt_files(template: Template, tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="missing"):
        Template.load(tmp_path / "nowhere")
    names = template.save(tmp_path / "t")
    npy = next(n for n in names if n.endswith(".npy"))
    (tmp_path / "t" / npy).write_bytes(b"not a numpy file")
    with pytest.raises(TemplateError, match="corrupt"):
        Template.load(tmp_path / "t")
    template.save(tmp_path / "u")
    (tmp_path / "u" / "ght_mask.png").unlink()
    with pytest.raises(TemplateError, match="mask"):
        Template.load(tmp_path / "u")
    template.save(tmp_path / "v")
    (tmp_path / "v" / "ght_template.json").write_text('{"format": "other"}')
    with pytest.raises(TemplateError, match="not a"):
        Template.load(tmp_path / "v")


# ---------------------------------------------------------------------------------- warp


def test_aligned_crop_matches_the_canonical_view(registrar: Registrar) -> None:
    canonical = PartGenerator(SynthConfig(size=SIZE), SEED)
    mask = canonical.foreground_mask() > 0
    reference = canonical.render("good", np.random.default_rng(12)).image.astype(np.float64)
    reg = registrar.register(_generator().render("good", np.random.default_rng(12)).image)
    aligned = reg.aligned.astype(np.float64)
    a = aligned[mask] - aligned[mask].mean()
    b = reference[mask] - reference[mask].mean()
    ncc = float((a * b).sum() / math.sqrt((a * a).sum() * (b * b).sum()))
    assert ncc > 0.9, ncc
    assert reg.mask.dtype == np.uint8 and reg.mask.shape == (SIZE[1], SIZE[0])
    inter = np.logical_and(reg.mask > 0, mask).sum()
    assert inter / np.logical_or(reg.mask > 0, mask).sum() > 0.8  # derived vs true silhouette


# ------------------------------------------------------------------------ kernels, input


def test_running_peak_equals_full_scan(registrar: Registrar) -> None:
    """The hot path finds each slice's peak without scanning it; it must equal a scan."""
    frame = _generator().render("good", np.random.default_rng(13)).image
    top = registrar.template.coarse_level
    img = pyramid(to_grey(frame), top)[top]
    level = registrar._levels[-1]
    from edge.registration.edges import edge_points

    pts = edge_points(img, level.model.edge_threshold)
    voter = CpuVoter()
    hyp = registrar._coarse_hyp
    acc, v_full, i_full = voter.vote(pts, hyp, level.table, (0, 0), img.shape, keep=True)
    _, v_fast, i_fast = voter.vote(pts, hyp, level.table, (0, 0), img.shape)
    assert acc is not None and acc.sum() > 0
    assert np.array_equal(v_full, v_fast) and np.array_equal(i_full, i_fast)
    flat = acc.reshape(len(hyp), -1)
    assert np.array_equal(flat.max(axis=1), v_full) and np.array_equal(flat.argmax(axis=1), i_full)
    # a local window around the best peak: skipping the entries that cannot reach it ("ring")
    # leaves the votes unchanged
    h = int(np.argmax(v_full))
    cx, cy = int(i_full[h] % img.shape[1]), int(i_full[h] // img.shape[1])
    win = ((cx - 3, cy - 3), (7, 7))
    local, _, _ = voter.vote(pts, hyp, level.table, *win, keep=True)
    ringed, v_ring, i_ring = voter.vote(pts, hyp, level.table, *win, keep=True, ring=True)
    assert local is not None and ringed is not None and local.sum() > 0
    assert np.array_equal(local, ringed)
    _, v_fast_ring, i_fast_ring = voter.vote(pts, hyp, level.table, *win, ring=True)
    assert np.array_equal(v_ring, v_fast_ring) and np.array_equal(i_ring, i_fast_ring)


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((64, 64), np.float32),
        np.zeros((64, 64, 2), np.uint8),
        np.zeros((64,), np.uint8),
        np.zeros((0, 0), np.uint8),
        np.zeros((4, 300), np.uint8),
        "not an image",
    ],
    ids=["float32", "2-channel", "1-d", "empty", "too-small", "str"],
)
def test_unusable_input_raises(registrar: Registrar, frame: object) -> None:
    with pytest.raises(RegistrationError):
        registrar.register(frame)  # type: ignore[arg-type]


def test_device_choice(template: Template) -> None:
    with pytest.raises(RegistrationError, match="device"):
        Registrar(template, device="gpu")
    assert Registrar(template, device="auto").device in ("cpu", "cuda")
    from numba import cuda

    if not cuda.is_available():
        with pytest.raises(DeviceUnavailable):
            Registrar(template, device="cuda")


def test_template_build_refuses_bad_input() -> None:
    with pytest.raises(TemplateError):
        Template.build(np.zeros((64, 64), np.float32))
    with pytest.raises(TemplateError, match="edges"):
        Template.build(np.full((64, 64), 80, np.uint8), foreground=np.ones((64, 64), np.uint8))
    with pytest.raises(TemplateError, match="foreground"):
        Template.build(_shape(), foreground=np.ones((10, 10), np.uint8))
