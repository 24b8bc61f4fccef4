import contextlib
import io
import math

import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from creative_assets.detection.evaluation import (
    ALL_CLASSES,
    PRESENCE_COLUMNS,
    always_absent_accuracy,
    coco_ap,
    evaluate_presence,
    load_ground_truth,
    max_scores,
    presence_metrics,
)
from creative_assets_tests.support.coco_builders import preds, write_coco


@pytest.fixture
def two_class_gt(tmp_path):
    # Category ids out of order on purpose: classes must come out in id order.
    return load_ground_truth(
        write_coco(
            tmp_path / "valid.json",
            images=[(12, "b.jpg"), (10, "a.jpg"), (11, "sub/c.jpg")],
            boxes=[(10, 1, [10, 10, 50, 50]), (10, 1, [100, 100, 40, 40]), (12, 3, [0, 0, 30, 20])],
            categories=[(3, "smile"), (1, "face")],
        )
    )


def test_load_ground_truth_orders_images_by_id_and_classes_by_category_id(two_class_gt):
    assert two_class_gt.image_ids.tolist() == [10, 11, 12]
    assert two_class_gt.file_names == ["a.jpg", "sub/c.jpg", "b.jpg"]
    assert two_class_gt.classes == ["face", "smile"]
    assert two_class_gt.category_ids == [1, 3]
    assert two_class_gt.widths.tolist() == [200, 200, 200]


def test_load_ground_truth_presence_is_at_least_one_box(two_class_gt):
    assert two_class_gt.presence.tolist() == [[True, False], [False, False], [False, True]]


def test_load_ground_truth_fills_missing_area_and_iscrowd(two_class_gt):
    ann = two_class_gt.coco.anns[1]
    assert ann["area"] == 2500.0
    assert ann["iscrowd"] == 0


def test_max_scores_takes_highest_per_class_and_zero_without_detections(two_class_gt):
    p = {10: preds(([0, 0, 5, 5], 0.4, 0), ([0, 0, 9, 9], 0.7, 0), ([1, 1, 5, 5], 0.2, 1))}
    scores = max_scores(two_class_gt, p)
    np.testing.assert_allclose(scores, [[0.7, 0.2], [0.0, 0.0], [0.0, 0.0]], rtol=1e-6)


def test_max_scores_rejects_unknown_image_id(two_class_gt):
    with pytest.raises(ValueError, match="not in valid.json"):
        max_scores(two_class_gt, {99: preds(([0, 0, 5, 5], 0.4, 0))})


def test_max_scores_rejects_label_outside_classes(two_class_gt):
    with pytest.raises(ValueError, match="label outside"):
        max_scores(two_class_gt, {10: preds(([0, 0, 5, 5], 0.4, 2))})


def test_presence_metrics_matches_hand_count():
    truth = np.array([True, True, False, False, True])
    scores = np.array([0.9, 0.3, 0.6, 0.0, 0.5])
    m = presence_metrics(truth, scores, 0.5)
    assert (m.tp, m.fp, m.tn, m.fn, m.n) == (2, 1, 1, 1, 5)
    assert m.accuracy == pytest.approx(0.6)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)


def test_presence_metrics_precision_is_zero_when_nothing_predicted():
    m = presence_metrics(np.array([True, False]), np.array([0.1, 0.0]), 0.5)
    assert (m.tp, m.fp, m.tn, m.fn) == (0, 0, 1, 1)
    assert (m.precision, m.recall, m.f1, m.accuracy) == (0.0, 0.0, 0.0, 0.5)


def test_presence_metrics_recall_is_zero_when_class_never_present():
    m = presence_metrics(np.array([False, False]), np.array([0.9, 0.0]), 0.5)
    assert (m.recall, m.precision, m.accuracy) == (0.0, 0.0, 0.5)


def test_presence_metrics_counts_score_equal_to_threshold_as_present():
    assert presence_metrics(np.array([True]), np.array([0.5]), 0.5).tp == 1


def test_presence_metrics_rejects_non_positive_threshold():
    with pytest.raises(ValueError, match="> 0"):
        presence_metrics(np.array([False]), np.array([0.0]), 0.0)


def test_presence_metrics_accepts_a_matrix_of_cells():
    m = presence_metrics(np.array([[True, False], [False, True]]), np.array([[0.9, 0.9], [0.0, 0.0]]), 0.5)
    assert (m.tp, m.fp, m.tn, m.fn, m.n) == (1, 1, 1, 1, 4)


def test_confusion_rows_are_truth_and_columns_predicted():
    truth = np.array([True, True, True, False, False, False, False, False, False, False])
    scores = np.array([0.9, 0.9, 0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    cm = presence_metrics(truth, scores, 0.5).confusion()
    # TN=6, FP=1, FN=1, TP=2
    assert cm.tolist() == [[6, 1], [1, 2]]


def test_as_dict_holds_every_metric():
    d = presence_metrics(np.array([True]), np.array([0.9]), 0.5).as_dict()
    assert set(d) == {"tp", "fp", "tn", "fn", "n", "accuracy", "precision", "recall", "f1"}


def test_always_absent_accuracy_is_share_of_absent_cells():
    assert always_absent_accuracy(np.array([True, False, False, False])) == 0.75


def test_evaluate_presence_has_a_row_per_class_and_confidence_plus_pooled(two_class_gt):
    p = {10: preds(([0, 0, 5, 5], 0.7, 0)), 11: preds(([0, 0, 5, 5], 0.3, 1))}
    df = evaluate_presence(two_class_gt, p, [0.2, 0.6])
    assert list(df.columns) == PRESENCE_COLUMNS
    assert df[["class_name", "confidence"]].values.tolist() == [
        ["face", 0.2],
        ["face", 0.6],
        ["smile", 0.2],
        ["smile", 0.6],
        [ALL_CLASSES, 0.2],
        [ALL_CLASSES, 0.6],
    ]
    assert df["class_name"].dtype == pd.StringDtype()
    assert df["tp"].dtype == np.int64 and df["accuracy"].dtype == np.float64


def test_evaluate_presence_pools_counts_over_classes(two_class_gt):
    p = {10: preds(([0, 0, 5, 5], 0.7, 0)), 11: preds(([0, 0, 5, 5], 0.3, 1))}
    df = evaluate_presence(two_class_gt, p, [0.2])
    per_class = df[df["class_name"] != ALL_CLASSES][["n", "tp", "fp", "tn", "fn"]].sum()
    pooled = df[df["class_name"] == ALL_CLASSES][["n", "tp", "fp", "tn", "fn"]].iloc[0]
    assert per_class.tolist() == pooled.tolist() == [6, 1, 1, 3, 1]


@pytest.fixture
def box_gt(tmp_path):
    """Two images, one 100×100 face box each; `smile` has no ground truth at all."""
    return load_ground_truth(
        write_coco(
            tmp_path / "boxes.json",
            images=[(1, "a.jpg"), (2, "b.jpg")],
            boxes=[(1, 1, [20, 20, 100, 100]), (2, 1, [50, 40, 100, 100])],
            categories=[(1, "face"), (2, "smile")],
        )
    )


def test_coco_ap_is_one_for_perfect_predictions(box_gt):
    p = {1: preds(([20, 20, 120, 120], 0.9, 0)), 2: preds(([50, 40, 150, 140], 0.8, 0))}
    ap = coco_ap(box_gt, p)
    assert ap["AP"] == pytest.approx(1.0)
    assert ap["AP50"] == pytest.approx(1.0)
    assert ap["AP/face"] == pytest.approx(1.0)


def test_coco_ap_of_shifted_boxes_matches_pycocotools_directly(box_gt):
    # Shifting a 100-px box by 20 px gives IoU 80/120 = 0.667: a match at IoU .50-.65, a miss above.
    p = {1: preds(([40, 20, 140, 120], 0.9, 0)), 2: preds(([70, 40, 170, 140], 0.8, 0))}
    ap = coco_ap(box_gt, p)

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(box_gt.json_path))
        for ann in coco_gt.dataset["annotations"]:
            ann.update(area=ann["bbox"][2] * ann["bbox"][3], iscrowd=0)
        coco_gt.createIndex()
        dets = [
            {"image_id": 1, "category_id": 1, "bbox": [40, 20, 100, 100], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [70, 40, 100, 100], "score": 0.8},
        ]
        ev = COCOeval(coco_gt, coco_gt.loadRes(dets), iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ap["AP50"] == pytest.approx(1.0)
    assert ap["AP"] == pytest.approx(0.4)
    assert (ap["AP"], ap["AP50"]) == pytest.approx((ev.stats[0], ev.stats[1]))


def test_coco_ap_is_zero_without_any_detection(box_gt):
    ap = coco_ap(box_gt, {})
    assert (ap["AP"], ap["AP50"], ap["AP/face"]) == (0.0, 0.0, 0.0)


def test_coco_ap_is_nan_for_class_without_ground_truth(box_gt):
    p = {1: preds(([20, 20, 120, 120], 0.9, 0), ([0, 0, 10, 10], 0.5, 1))}
    ap = coco_ap(box_gt, p)
    assert math.isnan(ap["AP/smile"]) and math.isnan(ap["AP50/smile"])
    assert not math.isnan(ap["AP"])


def test_coco_ap_without_detections_is_nan_for_class_without_ground_truth(box_gt):
    assert math.isnan(coco_ap(box_gt, {})["AP/smile"])


def test_coco_ap_by_size_bins_boxes_by_their_size_at_the_input(tmp_path):
    from creative_assets.detection.evaluation import coco_ap_by_size

    # 640×480 at a 160 px input: 30, 90, 150 and 300 px squares are 10, 30, 50 and 100 px there,
    # one per bin; only the smallest and the largest are found.
    squares = [30, 90, 150, 300]
    gt = load_ground_truth(
        write_coco(
            tmp_path / "test.json",
            images=[(1, "a.jpg")],
            boxes=[
                (1, 1, [200 - s / 2 if s < 300 else 320, 10 + 160 * (k % 3), s, s])
                for k, s in enumerate(squares)
            ],
            categories=[(1, "logo")],
            size=(640, 480),
        )
    )
    found = [a["bbox"] for a in gt.coco.dataset["annotations"] if a["bbox"][2] in (30, 300)]
    p = {1: preds(*[([x, y, x + w, y + h], 0.9, 0) for x, y, w, h in found])}
    table = coco_ap_by_size(gt, p, short_edge=160, max_size=1000).set_index("size")
    assert table["boxes"].tolist() == [1, 1, 1, 1]
    assert table.loc["tiny", "AP"] == pytest.approx(1.0)
    assert table.loc["large", "AP"] == pytest.approx(1.0)
    assert table.loc["small", "recall50"] == 0.0
    assert table.loc["medium", "AP"] == 0.0
    # at the full 480 px input every box is 30 px or more: none is tiny
    full = coco_ap_by_size(gt, p, short_edge=480, max_size=1000).set_index("size")
    assert full.loc["tiny", "boxes"] == 0 and math.isnan(full.loc["tiny", "AP"])


def test_by_size_at_thresholds_counts_only_detections_above_the_class_threshold(tmp_path):
    from creative_assets.detection.evaluation import by_size_at_thresholds

    gt = load_ground_truth(
        write_coco(
            tmp_path / "test.json",
            images=[(1, "a.jpg")],
            boxes=[(1, 1, [0, 0, 30, 30]), (1, 1, [300, 200, 300, 270])],
            categories=[(1, "logo")],
            size=(640, 480),
        )
    )
    # the tiny box is found with a low score, the large one with a high score
    p = {1: preds(([0, 0, 30, 30], 0.3, 0), ([300, 200, 600, 470], 0.9, 0))}
    table = by_size_at_thresholds(gt, p, {"logo": 0.5}, 160, 1000).set_index("size")
    assert table.loc["tiny", "AP"] == pytest.approx(1.0)
    assert table.loc["tiny", "recall50_at_threshold"] == 0.0
    assert table.loc["large", "recall50_at_threshold"] == 1.0
