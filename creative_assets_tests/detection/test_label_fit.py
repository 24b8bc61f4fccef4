import numpy as np
import pytest

from creative_assets.detection.box_stats import read_label_boxes
from creative_assets.detection.label_fit import (
    DEFAULT_ANCHORS,
    fit_aspect_ratios,
    fit_to_labels,
    fit_to_split,
    mean_best_iou,
)
from creative_assets.settings import FitSettings, build_settings
from creative_assets_tests.support.coco_builders import write_coco


def squares(tmp_path, side: float, n: int = 20):
    """n square logos of `side` px in 640×480 stills (short side 480)."""
    return write_coco(
        tmp_path / "train.json",
        images=[(i + 1, f"{i}.jpg") for i in range(n)],
        boxes=[(i + 1, 1, [10, 10, side, side]) for i in range(n)],
        categories=[(1, "logo")],
        size=(640, 480),
    )


def demo_train(tmp_path):
    return build_settings(tmp_path, "demo").train


def test_mean_best_iou_of_an_exact_anchor_is_one_and_of_a_half_size_one_a_quarter():
    sizes, aspects = np.array([10.0]), np.array([1.0])
    assert mean_best_iou(sizes, aspects, np.array([10.0]), np.array([1.0])) == pytest.approx(1.0)
    assert mean_best_iou(sizes, aspects, np.array([20.0]), np.array([1.0])) == pytest.approx(0.25)


def test_small_boxes_grow_the_input_until_they_reach_the_minimum_size(tmp_path):
    # 24 px in a 480 px short side is 7.2 px at the demo's smallest training input (144): ×12/7.2
    train = demo_train(tmp_path)
    fit = FitSettings(anchors=False, min_box_pixels=12, max_short_side=1000)
    fitted = fit_to_split(train, fit, squares(tmp_path, 24), ["logo"])
    factor = 12 / 7.2
    assert fitted.settings.min_size_test == 8 * round(160 * factor / 8)
    assert fitted.settings.min_size_train == [8 * round(s * factor / 8) for s in train.min_size_train]
    assert fitted.settings.anchor_sizes is None


def test_input_growth_is_capped_by_max_short_side(tmp_path):
    fit = FitSettings(anchors=False, min_box_pixels=12, max_short_side=200)
    fitted = fit_to_split(demo_train(tmp_path), fit, squares(tmp_path, 24), ["logo"])
    assert fitted.settings.min_size_test == 200
    assert "capped" in fitted.report["input_size"]["reason"]


def test_large_boxes_keep_the_profile_input(tmp_path):
    train = demo_train(tmp_path)
    fitted = fit_to_split(train, FitSettings(anchors=False), squares(tmp_path, 120), ["logo"])
    assert fitted.settings == train


def test_anchors_shrink_to_the_small_boxes_and_match_them_better(tmp_path):
    # 30 px at 480 is 10 px at the 160 px test input: an anchor of the finest level (16 or 24) shrinks to ~10
    fit = FitSettings(input_size=False)
    fitted = fit_to_split(demo_train(tmp_path), fit, squares(tmp_path, 30), ["logo"])
    sizes = fitted.settings.anchor_sizes
    assert [len(level) for level in sizes] == [len(level) for level in DEFAULT_ANCHORS["tiny"]]
    assert any(9.5 <= s <= 10.5 for s in sizes[0])
    assert sizes == sorted(sizes)  # small anchors stay on the fine levels
    report = fitted.report["anchors"]
    assert report["changed"] and report["matched_share_default"] == 0.0  # 10 px vs 16 px: IoU 0.39
    assert report["mean_best_iou"] > report["mean_best_iou_default"]
    assert report["matched_share"] == 1.0


def test_anchors_that_already_match_the_boxes_are_kept(tmp_path):
    # 60 px at 480 is 20 px at 160: the 16 and 24 px anchors overlap it with IoU 0.64 and 0.69
    train = demo_train(tmp_path)
    fitted = fit_to_split(train, FitSettings(input_size=False), squares(tmp_path, 60), ["logo"])
    assert fitted.settings == train
    assert fitted.report["anchors"]["changed"] is False
    assert fitted.report["anchors"]["matched_share_default"] == 1.0


def test_square_labels_get_three_distinct_ratios_around_one():
    ratios = fit_aspect_ratios(np.ones(50), 3)
    assert ratios[1] == pytest.approx(1.0)
    assert ratios[2] / ratios[0] == pytest.approx(1.5, rel=1e-2)


def test_wide_labels_get_wide_ratios():
    aspects = np.concatenate([np.full(10, 0.25), np.full(10, 0.5), np.full(10, 1.0)])
    ratios = fit_aspect_ratios(aspects, 3)
    assert ratios == (0.25, 0.5, 1.0)


def test_no_boxes_change_nothing(tmp_path):
    train = demo_train(tmp_path)
    boxes = read_label_boxes(squares(tmp_path, 30), ["product"])
    assert fit_to_labels(train, FitSettings(), boxes).settings == train
