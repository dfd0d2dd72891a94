import numpy as np

from edge.regions import Region, regions_to_frame, top_regions


def test_regions_highest_peak_first_in_map_pixels() -> None:
    amap = np.zeros((10, 20), np.float32)
    amap[1:3, 2:5] = 1.0  # weaker blob
    amap[6:9, 10:12] = 2.0  # stronger blob
    regions = top_regions(amap, level=0.5)
    assert [r.peak for r in regions] == [2.0, 1.0]
    strong = regions[0]
    assert (strong.x, strong.y, strong.width, strong.height, strong.area_px) == (10, 6, 2, 3, 6)


def test_no_region_below_level_and_limit_respected() -> None:
    amap = np.zeros((10, 10), np.float32)
    assert top_regions(amap, 0.1) == []
    amap[::2, ::2] = 1.0  # 25 separate pixels
    assert len(top_regions(amap, 0.5, limit=3)) == 3


def test_a_resized_map_boxes_the_same_pixels_of_the_source() -> None:
    # Map pixel (0, 0) of a map 4x smaller than the source covers source pixels 0..3.
    to_source = np.array([[4.0, 0.0, 1.5], [0.0, 4.0, 1.5]])  # centres: x' = 4x + 1.5
    (box,) = regions_to_frame([Region(0, 0, 1, 1, peak=1.0, area_px=1)], to_source)
    assert (box.x, box.y, box.width, box.height, box.area_px) == (0, 0, 4, 4, 16)


def test_regions_follow_the_registered_pose_into_the_frame() -> None:
    box = Region(x=10, y=20, width=4, height=2, peak=3.0, area_px=8)
    # Map pixels → frame: scale 2, rotate 90° (x' = -2y + 100, y' = 2x + 50).
    to_frame = np.array([[0.0, -2.0, 100.0], [2.0, 0.0, 50.0]])
    (mapped,) = regions_to_frame([box], to_frame)
    assert (mapped.x, mapped.y, mapped.width, mapped.height) == (57, 69, 4, 8)
    assert mapped.peak == 3.0 and mapped.area_px == 32
