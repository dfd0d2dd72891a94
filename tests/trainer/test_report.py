"""The report writes an HTML page whose every linked figure exists and is a PNG."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.overlay import overlay_heatmap
from trainer.metrics import ImageRecord, evaluate_records
from trainer.report import heatmap_scale, select_cases, write_report

SIZE = 32
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _ImgSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [v for k, v in attrs if k == "src" and v]


def _record(cls: str, typ: str, score: float, i: int) -> ImageRecord:
    rng = np.random.default_rng(i)
    image = np.full((SIZE, SIZE, 3), 0.4, np.float32)
    cv2.circle(image, (SIZE // 2, SIZE // 2), 10, (0.8, 0.7, 0.6), -1)
    anomaly_map = rng.random((SIZE, SIZE)).astype(np.float32) * 0.1
    mask = np.zeros((SIZE, SIZE), bool)
    if cls != "good":
        mask[10:16, 12:20] = True
        anomaly_map[mask] += score
    return ImageRecord(
        file=f"test/{typ}/{i:03d}.png",
        cls=cls,
        type=typ,
        score=score,
        anomaly_map=anomaly_map,
        gt_mask=mask if cls == "defect" else None,
        image=image,
    )


def _records() -> list[ImageRecord]:
    specs = [("good", "good", s) for s in (0.1, 0.2, 0.35)]
    specs += [("defect", "scratch", s) for s in (0.3, 0.8)]
    specs += [("defect", "dent <&>", s) for s in (0.6, 0.9)]  # a name that needs escaping
    specs += [("nuisance", "dust", 0.4)]
    return [_record(cls, typ, s, i) for i, (cls, typ, s) in enumerate(specs)]


def _linked_pngs(page: Path) -> list[Path]:
    parser = _ImgSources()
    parser.feed(page.read_text(encoding="utf-8"))
    for src in parser.sources:
        assert not Path(src).is_absolute() and not src.startswith(("http:", "https:", "file:"))
    return [page.parent / src for src in parser.sources]


def _assert_valid_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    assert cv2.imread(str(path)) is not None, path


def test_write_report_links_existing_pngs(tmp_path: Path) -> None:
    records = _records()
    metrics = evaluate_records(records, threshold=0.5)
    page = write_report(
        tmp_path / "out", metrics, records, title="Line 3 <test>", cases_per_section=1
    )
    assert page == tmp_path / "out" / "report.html"
    text = page.read_text(encoding="utf-8")
    assert "Line 3 &lt;test&gt;" in text and "dent &lt;&amp;&gt;" in text
    linked = _linked_pngs(page)
    names = {p.name for p in linked}
    assert {"roc.png", "score_histograms.png"} <= names
    assert {"case_false_alarms_00.png", "case_misses_00.png", "case_best_00.png"} <= names
    for path in linked:
        _assert_valid_png(path)
    # Every figure written is linked from the page: no stray files.
    assert {p.name for p in (tmp_path / "out" / "figures").iterdir()} == names


def test_write_report_with_good_parts_only(tmp_path: Path) -> None:
    records = [r for r in _records() if r.cls == "good"]
    metrics = evaluate_records(records, threshold=0.5)
    page = write_report(tmp_path, metrics, records, cases_per_section=1)
    names = {p.name for p in _linked_pngs(page)}
    assert "roc.png" not in names  # undefined without defects, and said so on the page
    assert "score_histograms.png" in names and "case_false_alarms_00.png" in names
    for path in _linked_pngs(page):
        _assert_valid_png(path)
    assert "&mdash;" in page.read_text(encoding="utf-8")  # None metrics shown as a dash


def test_write_report_with_no_records(tmp_path: Path) -> None:
    page = write_report(tmp_path, evaluate_records([], threshold=1.0), [])
    assert page.is_file() and _linked_pngs(page) == []


def test_select_cases_orders_worst_and_best() -> None:
    cases = select_cases(_records(), n=2)
    assert [r.score for r in cases["false_alarms"]] == [0.35, 0.2]
    assert [r.score for r in cases["misses"]] == [0.3, 0.6]
    assert [r.score for r in cases["best"]] == [0.9, 0.8]


def test_heatmap_scale_is_positive() -> None:
    assert heatmap_scale([]) == 1.0
    flat = _record("good", "good", 0.1, 0)
    flat.anomaly_map = np.zeros((SIZE, SIZE), np.float32)
    assert heatmap_scale([flat]) == 1.0
    assert 0.0 < heatmap_scale(_records()) <= 1.0


# --- overlay_heatmap -------------------------------------------------------------------------


def test_overlay_shapes_and_types() -> None:
    amap = np.random.default_rng(0).random((SIZE, SIZE)).astype(np.float32)
    grey = np.full((SIZE, SIZE), 0.5, np.float32)
    for image in (grey, np.dstack([grey] * 3), (grey * 255).astype(np.uint8)):
        out = overlay_heatmap(image, amap)
        assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    # A map at another resolution is resized onto the image.
    assert overlay_heatmap(np.zeros((64, 48)), amap).shape == (64, 48, 3)
    with pytest.raises(ValueError):
        overlay_heatmap(np.zeros((SIZE, SIZE, 4)), amap)


def test_overlay_vmax_makes_colours_comparable() -> None:
    grey = np.full((8, 8), 0.5, np.float32)
    half = np.full((8, 8), 0.5, np.float32)
    one = np.ones((8, 8), np.float32)
    # With a shared vmax the same value gets the same colour, whatever else is on the map.
    np.testing.assert_array_equal(
        overlay_heatmap(grey, half, vmax=1.0), overlay_heatmap(grey, 2 * half, vmax=2.0)
    )
    assert not np.array_equal(
        overlay_heatmap(grey, half, vmax=1.0), overlay_heatmap(grey, one, 1.0)
    )
    # Above vmax saturates; without vmax each map is scaled by its own maximum.
    np.testing.assert_array_equal(
        overlay_heatmap(grey, 5 * one, 1.0), overlay_heatmap(grey, one, 1.0)
    )
    np.testing.assert_array_equal(overlay_heatmap(grey, half), overlay_heatmap(grey, one))
    # An all-zero map does not divide by zero.
    assert overlay_heatmap(grey, np.zeros((8, 8))).dtype == np.uint8


def test_overlay_channel_order() -> None:
    red_bgr = np.zeros((8, 8, 3), np.float32)
    red_bgr[..., 2] = 1.0
    zero = np.zeros((8, 8), np.float32)
    as_bgr = overlay_heatmap(red_bgr, zero).astype(int)  # BGR in, like the model input
    as_rgb = overlay_heatmap(red_bgr, zero, image_is_rgb=True).astype(int)
    # The output is BGR: read as BGR the part is red (channel 2), read as RGB it is blue.
    assert as_bgr[0, 0, 2] - as_rgb[0, 0, 2] > 100
    assert as_rgb[0, 0, 0] - as_bgr[0, 0, 0] > 100
