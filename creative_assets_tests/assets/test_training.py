"""grid_search and chosen_model materialised on a two-by-two smoke grid from in-memory COCO datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from creative_assets.assets.datasets import coco_datasets
from creative_assets.assets.training import chosen_model, grid_search
from creative_assets.detection.evaluation import load_ground_truth
from creative_assets.detection.selection import NO_MODEL
from creative_assets_tests.support.asset_runs import (
    BRAND,
    Invocation,
    ingest_in_memory,
    invoke,
    model_store,
    pair_context,
    smoke_settings,
    tiny_data_root,
)

CONFIDENCES = (20, 40, 60, 80)  # the smoke profile's confidences, in percent


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data_root(tmp_path_factory.mktemp("training") / "data")


@pytest.fixture(scope="module")
def datasets(root: Path) -> pd.DataFrame:
    rows = ingest_in_memory(root)["labels"]
    return invoke(
        coco_datasets, pair_context(BRAND, "branding"), settings=smoke_settings(root), labels=rows
    ).value


@pytest.fixture(scope="module")
def grid(root: Path, datasets: pd.DataFrame) -> Invocation:
    return invoke(
        grid_search, pair_context(BRAND, "branding"), settings=smoke_settings(root), coco_datasets=datasets
    )


def test_grid_search_has_a_row_per_trial_and_names_the_best_mean_accuracy(grid: Invocation) -> None:
    trials = grid.value
    assert sorted(zip(trials["max_iter"], trials["batch_size_per_image"], strict=True)) == [
        (2, 16),
        (2, 32),
        (4, 16),
        (4, 32),
    ]
    check = grid.checks["grid_complete"]
    assert check.passed and check.metadata["expected"].value == 4
    by_hand = trials[[f"accuracy_{p}" for p in CONFIDENCES]].mean(axis=1)
    assert by_hand.to_numpy() == pytest.approx(trials["mean_accuracy"].to_numpy())
    best = trials.set_index("trial").loc[grid.meta("best_trial")]
    assert best["mean_accuracy"] == pytest.approx(by_hand.max())
    assert grid.meta("best_mean_accuracy") == pytest.approx(by_hand.max())
    for plot in ("accuracy_heatmaps", "best_confusion_matrices"):
        assert grid.meta(plot).startswith("![") and "data:image/png;base64," in grid.meta(plot)
    by_size = grid.meta("best_by_size")
    assert all(f"| {name} (" in by_size for name in ("tiny", "small", "medium", "large"))
    # the heat maps outline the chosen trial's cell (best mean accuracy, above), and the metadata names it
    assert grid.meta("heatmap_marked_cell") == (
        f"MAX_ITER={best['max_iter']} BATCH_SIZE_PER_IMAGE={best['batch_size_per_image']} "
        f"({grid.meta('best_trial')})"
    )


def choose(root: Path, datasets: pd.DataFrame, grid: Invocation) -> Invocation:
    """chosen_model of acme|branding over the grid, handed in memory."""
    return invoke(
        chosen_model,
        pair_context(BRAND, "branding"),
        settings=smoke_settings(root),
        model_store=model_store(root),
        grid_search=grid.value,
        coco_datasets=datasets,
    )


def test_chosen_model_publishes_the_grids_best_trial(
    root: Path, datasets: pd.DataFrame, grid: Invocation
) -> None:
    run = choose(root, datasets, grid)

    (row,) = run.value.to_dict("records")
    assert row["status"] == "model" and row["trial"] == grid.meta("best_trial") == run.meta("trial")
    assert run.meta("heatmap_marked_cell").endswith(f"({row['trial']})")
    assert run.meta("heatmap_marked_cell") == grid.meta("heatmap_marked_cell")
    assert (root / row["checkpoint"]).is_file()
    best = grid.value.set_index("trial").loc[row["trial"]]
    assert run.meta("valid_accuracy_at_best_confidence") == max(best[f"accuracy_{p}"] for p in CONFIDENCES)
    check = run.checks["beats_always_absent"]
    accuracy, absent = check.metadata["accuracy"].value, check.metadata["always_absent"].value
    assert check.passed == (accuracy > absent)
    assert absent == pytest.approx(row["always_absent_accuracy"])
    assert run.checks["beats_haar"].passed
    assert run.checks["beats_haar"].metadata["haar"].value == "n/a (not face/smile)"
    # the lineage says which anchors the model was trained with, and they are the checkpoint's
    lineage = run.meta("lineage")
    anchors = lineage["label_fit"]["anchors"]
    trained_with = anchors["sizes"] if anchors["changed"] else None  # None: the architecture's own
    assert lineage["train_settings"]["anchor_sizes"] == trained_with
    saved = torch.load(root / row["checkpoint"], map_location="cpu", weights_only=True)
    assert saved["train_settings"]["anchor_sizes"] == trained_with


def test_chosen_model_says_in_words_whether_it_beats_always_absent_on_the_test_split(
    root: Path, datasets: pd.DataFrame, grid: Invocation
) -> None:
    run = choose(root, datasets, grid)

    (row,) = run.value.to_dict("records")
    test = load_ground_truth(root / datasets.set_index("split").loc["test", "json_path"])
    assert row["test_always_absent_accuracy"] == pytest.approx(1 - test.presence.mean())
    beats = row["test_accuracy"] > row["test_always_absent_accuracy"]
    assert row["beats_baseline"] == beats == run.meta("beats_baseline")
    assert run.checks["beats_always_absent_on_test"].passed == beats
    words = "beats the" if beats else "does NOT beat the"
    assert run.meta("baseline_verdict") == row["baseline_verdict"]
    assert row["baseline_verdict"].startswith(f"{words} 'always absent' baseline")
    assert f"on {test.n_images} held-out test images" in row["baseline_verdict"]


def test_without_datasets_the_grid_and_the_model_are_no_model(root: Path, datasets: pd.DataFrame) -> None:
    settings, key = smoke_settings(root), pair_context(BRAND, "face")
    empty = datasets.iloc[0:0]

    grid = invoke(grid_search, key, settings=settings, coco_datasets=empty)
    chosen = invoke(
        chosen_model,
        pair_context(BRAND, "face"),
        settings=settings,
        model_store=model_store(root),
        grid_search=grid.value,
        coco_datasets=empty,
    )

    assert grid.value.empty and grid.meta("status") == NO_MODEL and grid.checks["grid_complete"].passed
    (row,) = chosen.value.to_dict("records")
    assert (row["brand"], row["object"], row["status"]) == (BRAND, "face", NO_MODEL)
    assert pd.isna(row["checkpoint"])
    assert {name: c.passed for name, c in chosen.checks.items()} == {
        "beats_always_absent": True,
        "beats_haar": True,
        "beats_always_absent_on_test": True,
    }
    assert pd.isna(row["beats_baseline"])
    assert not (root / "models" / BRAND / "face").exists()
