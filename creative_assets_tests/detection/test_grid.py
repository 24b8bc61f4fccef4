"""The exhaustive grid: one row per trial, evaluation columns, prefix sharing, resume and the choice rule."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from creative_assets.detection.grid import (
    LONG_COLUMNS,
    RESULT_FILE,
    choose_best_trial,
    trial_columns,
)
from creative_assets.detection.grid_executors import run_grid
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.settings import build_settings
from creative_assets_tests.support.coco_builders import write_toy_coco

CLASSES = ["logo", "product"]
REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smoke_settings(root, **train):
    return build_settings(root, "smoke", {"train": {"device": "cpu", **train}})


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A smoke grid (MAX_ITER {2, 4} × BATCH_SIZE_PER_IMAGE {16, 32}) over two classes, with its log."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("root")
    split = write_toy_coco(root / "splits")
    settings = smoke_settings(root)
    lines, steps = [], []
    result = run_grid(
        TorchvisionBackend("cpu"),
        split,
        split,
        CLASSES,
        settings,
        root / "models" / "acme" / "logo",
        progress=lambda done, total, info: steps.append((done, total)),
        log=lines.append,
    )
    return root, split, settings, result, lines, steps


def test_one_row_per_combination_with_every_column(grid):
    _, _, settings, result, _, _ = grid
    trials = result.trials
    assert len(trials) == len(settings.grid.max_iter) * len(settings.grid.batch_size_per_image) == 4
    assert list(trials.columns) == trial_columns(settings.confidences)
    assert set(zip(trials["max_iter"], trials["batch_size_per_image"], strict=True)) == {
        (2, 16),
        (4, 16),
        (2, 32),
        (4, 32),
    }
    assert {"accuracy_20", "precision_40", "recall_60", "f1_80", "tp_20", "fn_80"} <= set(trials.columns)
    assert trials["trial"].tolist() == ["it2_roi16", "it4_roi16", "it2_roi32", "it4_roi32"]


def test_trial_table_dtypes_are_stable(grid):
    trials = grid[3].trials
    assert trials["trial"].dtype == pd.StringDtype() and trials["shared_run"].dtype == pd.StringDtype()
    assert trials["max_iter"].dtype == "int64" and trials["tp_20"].dtype == "int64"
    assert trials["accuracy_20"].dtype == "float64" and trials["AP"].dtype == "float64"


def test_long_table_has_a_row_per_trial_class_and_confidence(grid):
    _, _, settings, result, _, _ = grid
    long = result.long
    assert list(long.columns) == LONG_COLUMNS
    assert len(long) == 4 * len(CLASSES) * len(settings.confidences)
    assert set(long["class_name"]) == set(CLASSES)


def test_rates_are_macro_averaged_and_counts_summed_over_classes(grid):
    result = grid[3]
    row = result.trials.set_index("trial").loc["it4_roi32"]
    part = result.long[(result.long["trial"] == "it4_roi32") & (result.long["confidence"] == 0.4)]
    assert row["accuracy_40"] == pytest.approx(part["accuracy"].mean())
    assert row["f1_40"] == pytest.approx(part["f1"].mean())
    assert row["tp_40"] + row["fp_40"] + row["tn_40"] + row["fn_40"] == part["n"].sum() == 16
    assert row["fn_40"] == part["fn"].sum()
    accuracies = [row[f"accuracy_{c}"] for c in (20, 40, 60, 80)]
    assert row["mean_accuracy"] == pytest.approx(np.mean(accuracies))


def test_shared_prefix_trains_once_per_batch_size_and_says_so(grid):
    _, _, _, result, lines, steps = grid
    assert set(result.trials["shared_run"]) == {"roi16_it4", "roi32_it4"}
    assert sum("training to 4 iterations, snapshots at [2]" in line for line in lines) == 2
    assert steps[-1] == (8, 8)  # two runs of 4 iterations, not 2 + 4 + 2 + 4


def test_checkpoints_are_saved_per_trial_relative_to_the_data_root(grid):
    root, _, _, result, _, _ = grid
    for trial, checkpoint in zip(result.trials["trial"], result.trials["checkpoint"], strict=True):
        assert checkpoint == f"models/acme/logo/trials/{trial}/model.pth"
        assert (root / checkpoint).is_file()
    assert not (root / "models/acme/logo/runs").exists() or not any(
        (root / "models/acme/logo/runs").iterdir()
    )


def test_rerun_retrains_only_the_trial_whose_result_is_missing(grid):
    root, split, settings, first, _, _ = grid
    out = root / "models" / "acme" / "logo"
    (out / "trials" / "it2_roi32" / RESULT_FILE).unlink()
    mtimes = {
        t: (out / "trials" / t / RESULT_FILE).stat().st_mtime_ns
        for t in ("it2_roi16", "it4_roi16", "it4_roi32")
    }
    lines = []
    again = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out, log=lines.append)
    trained = [line for line in lines if "training" in line]
    assert trained == ["trial it2_roi32: training"]
    assert sum("skipped" in line for line in lines) == 3
    for t, mtime in mtimes.items():
        assert (out / "trials" / t / RESULT_FILE).stat().st_mtime_ns == mtime
    assert (out / "trials" / "it2_roi32" / RESULT_FILE).is_file()
    # the re-trained trial matches the snapshot it replaced: same seed, same weights, same metrics
    cols = ["trial", "shared_run", "mean_accuracy", "AP", "tp_20", "fp_20"]
    pd.testing.assert_frame_equal(again.trials[cols], first.trials[cols])


def test_result_from_other_settings_is_not_reused(grid, tmp_path):
    root, split, _, _, _, _ = grid
    one_trial = {"max_iter": [2], "batch_size_per_image": [16]}
    first = build_settings(root, "smoke", {"grid": one_trial})
    reseeded = build_settings(root, "smoke", {"grid": one_trial, "train": {"seed": 5}})
    run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, first, tmp_path / "grid")
    lines = []
    run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, reseeded, tmp_path / "grid", log=lines.append)
    assert lines[0] == "trial it2_roi16: training"
    assert not any("skipped" in line for line in lines)


def test_without_sharing_each_trial_trains_alone_with_the_same_results(grid, tmp_path):
    root, split, _, shared, _, _ = grid
    settings = smoke_settings(root, share_grid_prefix=False)
    alone = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, tmp_path / "alone")
    assert (alone.trials["shared_run"] == "").all()
    cols = ["trial", "mean_accuracy", "AP", "AP50", "tp_20", "fp_40", "recall_60"]
    pd.testing.assert_frame_equal(alone.trials[cols], shared.trials[cols])


def test_result_json_holds_the_row_and_long_rows(grid):
    root = grid[0]
    result = json.loads((root / "models/acme/logo/trials/it4_roi16" / RESULT_FILE).read_text())
    assert result["row"]["trial"] == "it4_roi16"
    assert len(result["long"]) == len(CLASSES) * 4


def _table(rows):
    df = pd.DataFrame(rows, columns=["trial", "max_iter", "batch_size_per_image", "mean_accuracy", "AP"])
    return df.astype({"trial": pd.StringDtype()})


def test_best_trial_has_the_highest_mean_accuracy():
    trials = _table([("a", 300, 512, 0.8, 0.9), ("b", 500, 512, 0.9, 0.1), ("c", 100, 256, np.nan, 1.0)])
    assert choose_best_trial(trials)["trial"] == "b"


def test_accuracy_tie_goes_to_the_higher_ap():
    trials = _table([("a", 300, 512, 0.9, 0.4), ("b", 500, 512, 0.9, 0.5)])
    assert choose_best_trial(trials)["trial"] == "b"


def test_accuracy_and_ap_tie_goes_to_the_cheaper_trial_then_the_name():
    trials = _table([("c", 500, 512, 0.9, 0.5), ("b", 300, 512, 0.9, 0.5), ("a", 512, 300, 0.9, 0.5)])
    assert choose_best_trial(trials)["trial"] == "a"  # 512 × 300 == 300 × 512: the name decides
    assert choose_best_trial(trials.iloc[:2])["trial"] == "b"


def test_choosing_from_no_trials_is_an_error():
    with pytest.raises(ValueError):
        choose_best_trial(_table([]))


def test_parallel_runs_in_worker_processes_give_the_same_trials(grid, tmp_path):
    root, split, settings, sequential, _, _ = grid
    lines, steps = [], []
    parallel = run_grid(
        TorchvisionBackend("cpu"),
        split,
        split,
        CLASSES,
        settings,
        tmp_path / "parallel",
        progress=lambda done, total, info: steps.append((done, total)),
        log=lines.append,
        parallel_runs=2,
    )
    assert "2 training runs, 2 at a time in worker processes" in lines
    assert steps[-1] == (8, 8)
    cols = ["trial", "shared_run", "mean_accuracy", "AP", "AP50", "tp_20", "fp_40", "recall_60"]
    pd.testing.assert_frame_equal(parallel.trials[cols], sequential.trials[cols])


def test_a_grid_killed_mid_run_resumes_to_the_uninterrupted_tables_labels_included(grid, tmp_path):
    root, split, settings, uninterrupted, _, _ = grid
    out = root / "models" / "acme" / "killed"
    first_result = out / "trials" / "it2_roi16" / RESULT_FILE
    script = Path(__file__).with_name("grid_in_subprocess.py")
    args = [str(root), str(split.json_path), str(split.image_root), str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(script), *args], cwd=REPO, env=env)
    try:
        while not first_result.is_file() and child.poll() is None:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert first_result.is_file()
    lines = []
    resumed = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out, log=lines.append)
    assert any("skipped" in line for line in lines) and any("training" in line for line in lines)

    def comparable(df: pd.DataFrame) -> pd.DataFrame:
        return df.drop(columns=["train_seconds", "checkpoint"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(comparable(resumed.trials), comparable(uninterrupted.trials))
    pd.testing.assert_frame_equal(resumed.long, uninterrupted.long)
    assert set(resumed.trials["shared_run"]) == {"roi16_it4", "roi32_it4"}


def test_a_run_that_keeps_failing_is_an_error_row_per_trial_and_the_other_runs_finish(tmp_path):
    from creative_assets_tests.support.flaky_backend import FlakyBackend

    split = write_toy_coco(tmp_path / "splits")
    settings = smoke_settings(tmp_path)
    backend = FlakyBackend(tmp_path / "attempts", failing=(32,))
    lines: list[str] = []
    result = run_grid(backend, split, split, CLASSES, settings, tmp_path / "grid", log=lines.append)
    assert result.trials["trial"].tolist() == ["it2_roi16", "it4_roi16"]
    assert result.errors["trial"].tolist() == ["it2_roi32", "it4_roi32"]
    assert set(result.errors["run"]) == {"roi32_it4"}
    assert set(result.errors["error"]) == {
        "MemoryError: simulated out of memory in the run of ROI batch 32 (attempt 3)"
    }
    assert backend.attempts(32) == 3 and backend.attempts(16) == 1  # the first try and two retries
    assert any("roi32_it4: failed after 3 attempts" in line for line in lines)


def test_a_run_that_fails_once_is_retried_to_the_same_table(grid, tmp_path):
    from creative_assets_tests.support.flaky_backend import FlakyBackend

    _, split, _, first, _, _ = grid
    settings = smoke_settings(tmp_path)
    backend = FlakyBackend(tmp_path / "attempts", failing=(16,), fail_times=1)
    again = run_grid(backend, split, split, CLASSES, settings, tmp_path / "grid")
    assert again.errors.empty and backend.attempts(16) == 2
    cols = ["trial", "mean_accuracy", "AP", "tp_20", "fp_20"]
    pd.testing.assert_frame_equal(again.trials[cols], first.trials[cols])


def test_worker_processes_apply_the_same_failure_policy(tmp_path):
    from creative_assets_tests.support.flaky_backend import FlakyBackend

    split = write_toy_coco(tmp_path / "splits")
    settings = smoke_settings(tmp_path)
    backend = FlakyBackend(tmp_path / "attempts", failing=(32,))
    result = run_grid(
        backend, split, split, CLASSES, settings, tmp_path / "grid", parallel_runs=2, max_retries=1
    )
    assert result.trials["trial"].tolist() == ["it2_roi16", "it4_roi16"]
    assert result.errors["trial"].tolist() == ["it2_roi32", "it4_roi32"]
    assert backend.attempts(32) == 2


def test_grid_metrics_of_a_hand_made_case():
    """Four images, two classes, known detections; every number below is worked out by hand.

    truth: logo in images 1 and 2, product in image 3.
    detections: 1 logo 0.9 · 2 logo 0.3 · 3 product 0.5 and logo 0.7 · 4 nothing.
    At 40 %: logo predicted in 1, 3 → TP 1 (1), FP 1 (3), FN 1 (2), TN 1 (4): accuracy 0.5, F1 0.5;
             product predicted in 3 → TP 1, TN 3: accuracy 1, F1 1.  Macro accuracy 0.75, F1 0.75.
    At 20 %: logo predicted in 1, 2, 3 → TP 2, FP 1, TN 1: accuracy 0.75, precision 2/3, recall 1, F1 0.8;
             product as at 40 %. Macro accuracy 0.875, precision 5/6, F1 0.9.
    At 60 % and 80 %: logo in 1, 3 at 60 % (as at 40 %) and in 1 only at 80 % (TP 1, FN 1, TN 2: accuracy
             0.75, F1 2/3); product absent at both (FN 1, TN 3: accuracy 0.75, F1 0).
    Mean accuracy over 20/40/60/80 = (0.875 + 0.75 + 0.625 + 0.75) / 4 = 0.75.
    """
    import tempfile
    from pathlib import Path

    from creative_assets.detection.backend import CocoSplit
    from creative_assets.detection.evaluation import load_ground_truth
    from creative_assets.detection.grid import evaluate_detector
    from creative_assets_tests.support.coco_builders import preds, write_coco
    from creative_assets_tests.support.fixed_detector import FixedDetector, write_id_images

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = write_id_images(root / "img", [1, 2, 3, 4])
        box = [10.0, 10.0, 20.0, 20.0]
        coco = write_coco(
            root / "valid.json",
            images,
            [(1, 1, box), (2, 1, box), (3, 2, box)],
            [(1, "logo"), (2, "product")],
            (64, 64),
        )
        xyxy = [10.0, 10.0, 30.0, 30.0]
        by_id = {1: preds((xyxy, 0.9, 0)), 2: preds((xyxy, 0.3, 0)), 3: preds((xyxy, 0.5, 1), (xyxy, 0.7, 0))}
        detector = FixedDetector(["logo", "product"], by_id)
        gt = load_ground_truth(coco)
        summary, long_rows = evaluate_detector(
            detector, CocoSplit(coco, root), gt, ["logo", "product"], [0.2, 0.4, 0.6, 0.8]
        )
    assert summary["accuracy_40"] == pytest.approx(0.75) and summary["f1_40"] == pytest.approx(0.75)
    assert (summary["tp_40"], summary["fp_40"], summary["fn_40"], summary["tn_40"]) == (2, 1, 1, 4)
    assert summary["accuracy_20"] == pytest.approx(0.875)
    assert summary["precision_20"] == pytest.approx(5 / 6) and summary["f1_20"] == pytest.approx(0.9)
    assert summary["accuracy_80"] == pytest.approx(0.75) and summary["f1_80"] == pytest.approx(1 / 3)
    assert summary["mean_accuracy"] == pytest.approx(0.75)
    logo_80 = next(r for r in long_rows if r["class_name"] == "logo" and r["confidence"] == 0.8)
    assert (logo_80["tp"], logo_80["fn"], logo_80["tn"], logo_80["fp"]) == (1, 1, 2, 0)
