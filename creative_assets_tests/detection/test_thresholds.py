import numpy as np
import pandas as pd
import pytest

from creative_assets.detection.evaluation import load_ground_truth, presence_metrics
from creative_assets.detection.thresholds import (
    OPTIMAL_THRESHOLD_COLUMNS,
    SWEEP_COLUMNS,
    choose_threshold,
    optimal_thresholds,
    sweep_thresholds,
)
from creative_assets.settings import ThresholdSettings
from creative_assets_tests.support.coco_builders import preds, write_coco

TRUTH = np.array([True, True, True, False, False, False])
SCORES = np.array([0.9, 0.7, 0.4, 0.8, 0.3, 0.0])


def test_sweep_matches_hand_computed_counts():
    sweep = sweep_thresholds(TRUTH, SCORES, [0.2, 0.5, 0.75, 0.95])
    assert list(sweep.columns) == SWEEP_COLUMNS
    assert sweep[["tp", "fp", "tn", "fn"]].values.tolist() == [
        [3, 2, 1, 0],
        [2, 1, 2, 1],
        [1, 1, 2, 2],
        [0, 0, 3, 3],
    ]
    np.testing.assert_allclose(sweep["accuracy"], [4 / 6, 4 / 6, 3 / 6, 3 / 6])
    np.testing.assert_allclose(sweep["precision"], [3 / 5, 2 / 3, 1 / 2, 0.0])
    np.testing.assert_allclose(sweep["recall"], [1.0, 2 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(sweep["f1"], [0.75, 2 / 3, 0.4, 0.0])


def test_sweep_gives_identical_numbers_to_presence_metrics():
    rng = np.random.default_rng(7)
    truth = rng.random(200) < 0.3
    scores = np.where(rng.random(200) < 0.7, rng.random(200), 0.0).astype(np.float32)
    thresholds = ThresholdSettings().values()
    sweep = sweep_thresholds(truth, scores, thresholds)
    for row in sweep.itertuples(index=False):
        m = presence_metrics(truth, scores, row.threshold)
        assert (row.tp, row.fp, row.tn, row.fn) == (m.tp, m.fp, m.tn, m.fn)
        assert (row.accuracy, row.precision, row.recall, row.f1) == (m.accuracy, m.precision, m.recall, m.f1)


def test_sweep_rows_are_in_ascending_threshold_order():
    sweep = sweep_thresholds(TRUTH, SCORES, [0.9, 0.2, 0.5])
    assert sweep["threshold"].tolist() == [0.2, 0.5, 0.9]


def sweep_table(accuracy: list[float], f1: list[float] | None = None) -> pd.DataFrame:
    n = len(accuracy)
    return pd.DataFrame(
        {
            "threshold": [round(0.2 + 0.01 * i, 2) for i in range(n)],
            "accuracy": accuracy,
            "f1": f1 if f1 is not None else [0.5] * n,
        }
    )


def test_choose_threshold_takes_highest_accuracy():
    assert choose_threshold(sweep_table([0.5, 0.6, 0.9, 0.7])) == 0.22


def test_choose_threshold_breaks_accuracy_ties_by_f1():
    assert choose_threshold(sweep_table([0.9, 0.9, 0.9, 0.5], f1=[0.2, 0.6, 0.4, 0.9])) == 0.21


def test_choose_threshold_takes_middle_of_widest_tied_run():
    # Tied at 0.8: a run of two (indexes 1-2) and a run of four (4-7); the middle of the four is index 5.
    accuracy = [0.5, 0.8, 0.8, 0.5, 0.8, 0.8, 0.8, 0.8, 0.5]
    assert choose_threshold(sweep_table(accuracy)) == 0.25


def test_choose_threshold_prefers_lowest_of_equally_wide_runs():
    accuracy = [0.8, 0.8, 0.8, 0.5, 0.8, 0.8, 0.8]
    assert choose_threshold(sweep_table(accuracy)) == 0.21


def test_choose_threshold_rejects_empty_sweep():
    with pytest.raises(ValueError, match="empty"):
        choose_threshold(sweep_table([]))


@pytest.fixture
def splits(tmp_path):
    cats = [(1, "face"), (2, "smile")]
    valid = write_coco(
        tmp_path / "valid.json",
        images=[(1, "v1.jpg"), (2, "v2.jpg"), (3, "v3.jpg")],
        boxes=[(1, 1, [0, 0, 10, 10]), (2, 1, [0, 0, 10, 10])],
        categories=cats,
    )
    test = write_coco(
        tmp_path / "test.json",
        images=[(1, "t1.jpg"), (2, "t2.jpg"), (3, "t3.jpg"), (4, "t4.jpg")],
        boxes=[(1, 1, [0, 0, 10, 10]), (3, 1, [0, 0, 10, 10])],
        categories=cats,
    )
    box = [0, 0, 10, 10]
    # valid faces: present images score .875 and .75, the absent one .25, so every threshold in
    # (.25, .75] is right on all three: 0.26 … 0.75, whose middle is 0.50.
    preds_valid = {1: preds((box, 0.875, 0)), 2: preds((box, 0.75, 0)), 3: preds((box, 0.25, 0))}
    # test faces at 0.50: image 1 TP (.625), image 2 FP (.5), image 3 FN (nothing), image 4 TN.
    preds_test = {1: preds((box, 0.625, 0)), 2: preds((box, 0.5, 0))}
    return load_ground_truth(valid), preds_valid, load_ground_truth(test), preds_test


def test_optimal_thresholds_chooses_on_valid_and_reports_test(splits):
    table, _ = optimal_thresholds(*splits, ThresholdSettings().values())
    face = table.set_index("class_name").loc["face"]
    assert face["threshold"] == 0.5
    assert face["valid_accuracy"] == 1.0
    assert (face["test_accuracy"], face["test_precision"], face["test_recall"]) == (0.5, 0.5, 0.5)
    assert (face["valid_positives"], face["test_positives"], face["test_n"]) == (2, 2, 4)


def test_optimal_thresholds_has_one_row_per_class_and_a_sweep_each(splits):
    thresholds = ThresholdSettings().values()
    table, sweeps = optimal_thresholds(*splits, thresholds)
    assert list(table.columns) == OPTIMAL_THRESHOLD_COLUMNS
    assert table["class_name"].tolist() == ["face", "smile"]
    assert table["class_name"].dtype == pd.StringDtype()
    assert set(sweeps) == {"face", "smile"}
    assert len(sweeps["smile"]) == len(thresholds)


def test_optimal_thresholds_for_class_never_seen_takes_middle_of_sweep(splits):
    # smile has no boxes and no detections: every threshold ties, so the middle of 0.20 … 0.99 wins.
    table, _ = optimal_thresholds(*splits, ThresholdSettings().values())
    smile = table.set_index("class_name").loc["smile"]
    assert smile["threshold"] == 0.59
    assert smile["test_accuracy"] == 1.0


def test_optimal_thresholds_rejects_splits_with_different_classes(splits, tmp_path):
    gt_valid, preds_valid, *_ = splits
    other = load_ground_truth(
        write_coco(tmp_path / "other.json", images=[(1, "x.jpg")], boxes=[], categories=[(1, "logo")])
    )
    with pytest.raises(ValueError, match="different classes"):
        optimal_thresholds(gt_valid, preds_valid, other, {}, [0.5])
