"""The chosen-model rules on hand-made grid rows: best confidence, lineage, chosen row, plot tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creative_assets.detection.baseline import BaselineVerdict
from creative_assets.detection.grid import choose_best_trial
from creative_assets.detection.selection import (
    CHOSEN_COLUMNS,
    NO_MODEL,
    best_confidence,
    chosen_frame,
    chosen_row,
    confusions_of,
    grid_folder,
    long_accuracy,
    model_lineage,
    no_model_row,
    training_seconds,
)
from creative_assets.settings import load_settings

CONFIDENCES = [0.2, 0.4, 0.6, 0.8]


def trial(name: str, max_iter: int, roi: int, accuracy: list[float], ap: float) -> dict:
    row = {
        "trial": name,
        "max_iter": max_iter,
        "batch_size_per_image": roi,
        "base_lr": 0.01,
        "ims_per_batch": 2,
        "backend": "torchvision",
        "architecture": "tiny",
        "device": "cpu",
        "AP": ap,
        "AP50": ap + 0.1,
        "mean_accuracy": float(np.mean(accuracy)),
        "shared_run": "",
        "train_seconds": 1.0,
    }
    for c, acc in zip(CONFIDENCES, accuracy, strict=True):
        p = int(round(c * 100))
        row |= {f"accuracy_{p}": acc, f"precision_{p}": acc, f"recall_{p}": acc, f"f1_{p}": acc}
        row |= {f"tp_{p}": p, f"fp_{p}": 1, f"tn_{p}": 2, f"fn_{p}": 3}
    return row


@pytest.fixture
def trials() -> pd.DataFrame:
    return pd.DataFrame(
        [
            trial("it10_roi32", 10, 32, [0.5, 0.6, 0.7, 0.6], 0.3),
            trial("it20_roi32", 20, 32, [0.7, 0.8, 0.8, 0.7], 0.4),
        ]
    )


def test_the_best_confidence_is_the_highest_accuracy_and_a_tie_goes_to_the_lower_confidence(trials):
    best = choose_best_trial(trials)
    assert best["trial"] == "it20_roi32"
    assert best_confidence(best, CONFIDENCES) == (40, 0.8)  # 40 % and 60 % tie at 0.8


def test_lineage_and_the_chosen_row_name_the_trial_its_solver_values_and_the_dataset(tmp_path: Path, trials):
    cfg = load_settings(tmp_path, profile="smoke")
    best = choose_best_trial(trials)
    lineage = model_lineage(best, "acme", "branding", ["logo"], "fp123", "v9", cfg)
    assert lineage["trial"] == "it20_roi32"
    assert lineage["params"] == {
        "SOLVER.MAX_ITER": 20,
        "ROI_HEADS.BATCH_SIZE_PER_IMAGE": 32,
        "SOLVER.BASE_LR": 0.01,
        "SOLVER.IMS_PER_BATCH": 2,
    }
    assert lineage["metrics"]["accuracy_40"] == 0.8 and lineage["metrics"]["AP"] == 0.4
    assert (lineage["dataset_fingerprint"], lineage["code_version"], lineage["profile"]) == (
        "fp123",
        "v9",
        "smoke",
    )
    verdict = BaselineVerdict(confidence=0.4, test_accuracy=0.5, always_absent_accuracy=0.75, test_images=8)
    row = chosen_row(best, lineage, {"model_id": "abc", "checkpoint": "models/x.pth"}, 0.55, None, verdict)
    frame = chosen_frame([row])
    assert not frame.loc[0, "beats_baseline"]
    assert str(frame["beats_baseline"].dtype) == "boolean"
    assert frame.loc[0, "baseline_verdict"].startswith("does NOT beat")
    assert list(frame.columns) == CHOSEN_COLUMNS
    assert frame.loc[0, "model_id"] == "abc" and json.loads(frame.loc[0, "classes"]) == ["logo"]
    assert frame.loc[0, "always_absent_accuracy"] == 0.55 and pd.isna(frame.loc[0, "haar_accuracy"])
    assert str(frame["max_iter"].dtype) == "Int64" and frame.loc[0, "max_iter"] == 20


def test_the_no_model_row_has_the_chosen_schema_and_says_no_model():
    frame = no_model_row("acme", "face", "smoke")
    assert list(frame.columns) == CHOSEN_COLUMNS and len(frame) == 1
    assert frame.loc[0, "status"] == NO_MODEL and pd.isna(frame.loc[0, "model_id"])
    assert pd.isna(frame.loc[0, "beats_baseline"])


def test_plot_tables_carry_each_trial_at_each_confidence(trials):
    long = long_accuracy(trials, CONFIDENCES)
    assert len(long) == 2 * 4
    row = long[(long["trial"] == "it10_roi32") & (long["confidence"] == 0.6)].iloc[0]
    assert row["accuracy"] == 0.7 and row["max_iter"] == 10
    matrices = confusions_of(trials.iloc[1], CONFIDENCES)
    assert matrices[0.8].tolist() == [[2, 1], [3, 80]]  # [[TN, FP], [FN, TP]]


def test_training_seconds_count_a_shared_run_once():
    trials = pd.DataFrame(
        {"shared_run": ["r32", "r32", "", "r64", "r64"], "train_seconds": [10.0, 20.0, 7.0, 5.0, 9.0]}
    )
    assert training_seconds(trials) == 20.0 + 7.0 + 9.0


def test_the_grid_folder_changes_with_the_dataset_and_the_training_settings(tmp_path: Path):
    cfg = load_settings(tmp_path, profile="smoke")
    other = load_settings(tmp_path, profile="smoke", overrides={"train": {"seed": 7}})
    a = grid_folder(cfg, "acme", "branding", "fp1")
    assert a == grid_folder(cfg, "acme", "branding", "fp1")
    assert a != grid_folder(cfg, "acme", "branding", "fp2")
    assert a != grid_folder(other, "acme", "branding", "fp1")
    assert a.resolve().is_relative_to(tmp_path.resolve())
