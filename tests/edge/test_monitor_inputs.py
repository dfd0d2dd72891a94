"""What the monitor is fed and how it is configured: frame statistics, streaming statistics,
baselines, the result payload's monitoring fields, and the [monitor] section's errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge.config import check_config_main
from edge.config.monitor import MetricsConfig
from edge.daemon.payload import result_payload
from edge.daemon.verdict import Verdict
from edge.monitor import PartObservation, frame_stats
from edge.monitor.baseline import (
    MeanWarmup,
    manifest_baseline,
    rate_baseline,
    validation_figures,
)
from edge.monitor.frame_stats import FrameStats
from edge.monitor.metrics import NAMES, REASONS
from edge.monitor.streaming import RunningMoments, WindowedHistogram
from edge.registration.pose import Pose
from tests.edge.test_config import MINIMAL, write


def _part(seed: int = 0) -> np.ndarray:
    """A textured part on a dark background, 8-bit."""
    rng = np.random.default_rng(seed)
    image = np.full((240, 320), 30.0)
    image[60:180, 80:240] = 160 + 40 * np.sin(np.arange(160) / 3.0)[None, :]
    return np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)


def test_frame_stats_values() -> None:
    flat = np.full((50, 60), 51, np.uint8)
    assert frame_stats(flat) == FrameStats(brightness=pytest.approx(0.2), contrast=0.0, focus=0.0)
    half = np.zeros((40, 40), np.uint8)
    half[:, 20:] = 255
    stats = frame_stats(half)
    assert stats.brightness == pytest.approx(0.5) and stats.contrast == pytest.approx(1.0)
    assert stats.focus > 0
    assert frame_stats(np.zeros((8, 8), np.uint8)) == FrameStats(0.0, 0.0, 0.0)


def test_a_dimmer_lamp_moves_the_brightness_alone() -> None:
    frame = _part()
    dim = (frame.astype(np.float64) * 0.8).astype(np.uint8)
    a, b = frame_stats(frame), frame_stats(dim)
    assert b.brightness == pytest.approx(0.8 * a.brightness, rel=0.01)
    assert b.contrast == pytest.approx(a.contrast, rel=0.01)
    assert b.focus == pytest.approx(a.focus, rel=0.03)


def test_a_blurred_frame_has_less_focus() -> None:
    import cv2

    frame = _part()
    blurred = cv2.GaussianBlur(frame, (0, 0), 2.0)
    assert frame_stats(blurred).focus < 0.5 * frame_stats(frame).focus


def test_frame_stats_of_16_bit_and_colour_frames_agree_with_8_bit_mono() -> None:
    mono = _part()
    deep = mono.astype(np.uint16) * 257  # the same picture at 16 bits
    colour = np.repeat(mono[:, :, None], 3, axis=2)
    for other in (deep, colour):
        assert frame_stats(other).brightness == pytest.approx(
            frame_stats(mono).brightness, rel=1e-3
        )
        assert frame_stats(other).focus == pytest.approx(frame_stats(mono).focus, rel=1e-2)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        frame_stats(mono.astype(np.float32))


def test_large_frames_are_subsampled_and_stay_comparable() -> None:
    small = _part()
    big = np.kron(small, np.ones((4, 4), np.uint8))  # 960x1280: stride 3
    assert frame_stats(big).brightness == pytest.approx(frame_stats(small).brightness, rel=0.01)


def test_running_moments_match_numpy() -> None:
    data = np.random.default_rng(0).normal(5.0, 2.0, 1000)
    moments = RunningMoments()
    for x in data:
        moments.add(float(x))
    assert moments.mean == pytest.approx(data.mean()) and moments.std == pytest.approx(
        data.std(ddof=1)
    )


def test_windowed_histogram_quantiles_are_those_of_the_last_values() -> None:
    hist = WindowedHistogram(0.1, 1000.0, bins=240, window=200, log=True)
    rng = np.random.default_rng(0)
    for x in rng.uniform(10, 20, 3000):
        hist.add(float(x))
    assert hist.quantile(0.99) == pytest.approx(19.9, rel=0.05)
    for x in rng.uniform(500, 900, 20):  # an excursion of 20 values: 10 % of the window
        hist.add(float(x))
    assert hist.quantile(0.99) > 500
    for x in rng.uniform(10, 20, 199):  # still one excursion value in the window
        hist.add(float(x))
    assert hist.quantile(0.999) > 500
    hist.add(15.0)  # and now none: the excursion is forgotten exactly one window after it ended
    assert hist.quantile(0.999) == pytest.approx(19.9, rel=0.05)
    assert hist.seen == 3000 + 20 + 200


def test_angles_are_learnt_modulo_360() -> None:
    warmup = MeanWarmup(angle=True)
    for angle in (179.0, -179.0, 178.0, -178.0):
        warmup.add(angle)
    baseline = warmup.baseline()
    assert abs(abs(baseline.mean) - 180.0) < 0.01 and baseline.std < 2.0


def test_rate_baselines_are_the_wilson_upper_bound() -> None:
    assert rate_baseline(10, 500, 0.001).mean == pytest.approx(0.0273, abs=2e-4)
    assert rate_baseline(0, 500, 0.001).mean == pytest.approx(1 / 501, rel=1e-3)
    assert rate_baseline(0, 500, 0.01).mean == 0.01  # the floor
    assert rate_baseline(500, 500, 0.001).mean == 0.5  # a broken line: capped


def test_manifest_figures_roundtrip_through_validation_figures() -> None:
    frames = [_part(seed) for seed in range(6)]
    poses = [(100.0 + i, 50.0, 179.0 if i % 2 else -179.0) for i in range(6)]
    figures = validation_figures(frames, poses, [0.9, 0.95, 0.92, 0.91, 0.97, 0.93])
    assert figures["good_brightness_mean"] == pytest.approx(
        np.mean([frame_stats(f).brightness for f in frames])
    )
    assert figures["good_pose_x_mean"] == pytest.approx(102.5)
    assert abs(abs(figures["good_pose_angle_mean"]) - 180.0) < 0.01
    assert figures["good_pose_angle_std"] < 1.5
    baseline = manifest_baseline(figures, "brightness", log=True, angle=False)
    assert baseline is not None and baseline.source == "manifest"
    assert math.exp(baseline.mean) == pytest.approx(figures["good_brightness_mean"], rel=1e-3)
    assert manifest_baseline(figures, "score", log=True, angle=False) is None  # not given


def test_the_result_payload_carries_what_the_monitor_reads() -> None:
    verdict = Verdict(
        part_id=7,
        verdict="OK",
        reason="",
        trigger_ns=2_000_000_000,
        trigger_wall=1_700_000_000.0,
        verdict_ns=2_040_000_000,
        verdict_wall=1_700_000_000.04,
        score=0.5,
        threshold=1.0,
        latency_ms={"total": 40.0},
        confidence=0.93,
        pose=Pose(101.23456, 55.5, -3.14159),
        frame=FrameStats(0.4, 0.3, 2.5),
    )
    payload = result_payload(verdict, "cam-1")
    assert payload["pose"] == {"x": 101.235, "y": 55.5, "angle_deg": -3.1416}
    assert payload["frame"] == {"brightness": 0.4, "contrast": 0.3, "focus": 2.5}
    obs = PartObservation.from_result(payload)
    assert (obs.part_id, obs.time_s, obs.latency_ms) == (7, 2.0, 40.0)
    assert (obs.pose_x, obs.pose_angle, obs.confidence, obs.focus) == (101.235, -3.1416, 0.93, 2.5)


def test_the_catalogue_and_the_configuration_name_the_same_metrics() -> None:
    assert set(NAMES) == set(MetricsConfig.model_fields)
    assert {f"{r}_rate" for r in REASONS} | {"nok_rate"} <= set(NAMES)


@pytest.mark.parametrize(
    ("section", "location", "message"),
    [
        ("[monitor.cusum]\nh = -1.0", "monitor.cusum.h", "Input should be greater than 0"),
        ("[monitor.ewma]\nlambda = 1.5", "monitor.ewma.lambda", "less than or equal to 1"),
        ("[monitor.ewma]\nlambda = 0.0", "monitor.ewma.lambda", "Input should be greater than 0"),
        (
            "[monitor.metrics.brightnes]\nenabled = false",
            "monitor.metrics.brightnes",
            "unknown key (did you mean 'brightness'?)",
        ),
        ("[monitor.metrics.focus]\nh = -2.0", "monitor.metrics.focus.h", "greater than 0"),
        (
            "[monitor.ewma]\nlamda = 0.2",
            "monitor.ewma.lamda",
            "unknown key (did you mean 'lambda'?)",
        ),
        (
            '[monitor.metrics.pose_x]\ndetector = "cusum"\nlambda = 0.2',
            "monitor.metrics.pose_x",
            "lambda, L and limits are EWMA settings; this metric uses cusum",
        ),
        (
            "[monitor.metrics.pose_y]\nL = 3.0",
            "monitor",
            "metrics.pose_y: lambda and L are EWMA settings; the metric uses cusum",
        ),
        (
            "[monitor.metrics.outbox_depth]\nhigh = 5.0\nlow = 10.0",
            "monitor.metrics.outbox_depth",
            "low (10.0) must be below high (5.0)",
        ),
        ("[monitor]\nwarmup_parts = 5", "monitor.warmup_parts", "greater than or equal to 20"),
    ],
)
def test_check_config_refuses_a_bad_monitor_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, location: str, message: str
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "engine").mkdir()
    path = write(tmp_path, MINIMAL + "\n" + section + "\n")
    assert check_config_main(path) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}: {location}: ") and message in lines[0], lines[0]


def test_a_good_monitor_section_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "engine").mkdir()
    text = MINIMAL + (
        '\n[monitor]\nwarmup_parts = 200\ndetector = "ewma"\n[monitor.ewma]\nlambda = 0.2\nL = 3\n'
        "[monitor.metrics.nok_rate]\nenabled = true\n"
        "[monitor.metrics.pose_angle]\nenabled = false\n"
        '[monitor.metrics.focus]\ndetector = "cusum"\nh = 8.0\n'
    )
    assert check_config_main(write(tmp_path, text)) == 0
