import numpy as np

from edge.regions import top_regions


def test_regions_are_boxed_in_source_coordinates_highest_peak_first() -> None:
    amap = np.zeros((10, 20), np.float32)
    amap[1:3, 2:5] = 1.0  # weaker blob
    amap[6:9, 10:12] = 2.0  # stronger blob
    regions = top_regions(amap, level=0.5, source_size=(40, 20))
    assert [r.peak for r in regions] == [2.0, 1.0]
    strong = regions[0]
    assert (strong.x, strong.y, strong.width, strong.height) == (20, 12, 4, 6)
    assert strong.area_px == 6 * 4


def test_no_region_below_level_and_limit_respected() -> None:
    amap = np.zeros((10, 10), np.float32)
    assert top_regions(amap, 0.1, (10, 10)) == []
    amap[::2, ::2] = 1.0  # 25 separate pixels
    assert len(top_regions(amap, 0.5, (10, 10), limit=3)) == 3


def test_regions_follow_the_registered_pose_into_the_frame() -> None:
    from edge.regions import Region, regions_to_frame

    box = Region(x=10, y=20, width=4, height=2, peak=3.0, area_px=8)
    # Map pixels → frame: scale 2, rotate 90° (x' = -2y + 100, y' = 2x + 50).
    to_frame = np.array([[0.0, -2.0, 100.0], [2.0, 0.0, 50.0]])
    (mapped,) = regions_to_frame([box], to_frame)
    assert (mapped.x, mapped.y, mapped.width, mapped.height) == (56, 70, 4, 8)
    assert mapped.peak == 3.0 and mapped.area_px == 32
