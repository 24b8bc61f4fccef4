import numpy as np
import pytest

from creative_assets.detection.box_stats import box_statistics, read_label_boxes, sizes_at_input
from creative_assets_tests.support.coco_builders import write_coco

# 640×480 stills at a 160 px input: every length shrinks by 3.
SQUARES = [30, 90, 150, 300]  # 10, 30, 50 and 100 px at the input


@pytest.fixture
def squares_json(tmp_path):
    boxes = [(1, 1, [0, 0, s, s]) for s in SQUARES] + [(2, 2, [10, 10, 40, 20])]
    return write_coco(
        tmp_path / "train.json",
        images=[(1, "a.jpg"), (2, "b.jpg")],
        boxes=boxes,
        categories=[(1, "logo"), (2, "product")],
        size=(640, 480),
    )


def test_sizes_at_input_follow_resize_shortest_edge(squares_json):
    boxes = read_label_boxes(squares_json, ["logo"])
    np.testing.assert_allclose(sizes_at_input(boxes, 160, 1000), [10, 30, 50, 100])
    # the long side cap wins: 640 → 200 is a factor of 3.2
    np.testing.assert_allclose(sizes_at_input(boxes, 160, 200), np.array(SQUARES) / 3.2)


def test_box_statistics_counts_boxes_under_each_size_at_the_input(squares_json):
    table = box_statistics(read_label_boxes(squares_json), 160, 1000).set_index("class_name")
    logo = table.loc["logo"]
    assert (logo["boxes"], logo["images"]) == (4, 1)
    assert (logo["under_16px"], logo["under_32px"], logo["under_64px"]) == (1, 2, 3)
    assert logo["rel_size_min"] == pytest.approx(30 / 480)
    assert logo["rel_size_max"] == pytest.approx(300 / 480)
    assert table.loc["product", "aspect_p50"] == pytest.approx(0.5)
    assert table.loc["__all__", "boxes"] == 5


def test_box_statistics_of_one_class_has_no_pooled_row(squares_json):
    table = box_statistics(read_label_boxes(squares_json, ["logo"]), 160, 1000)
    assert table["class_name"].tolist() == ["logo"]
