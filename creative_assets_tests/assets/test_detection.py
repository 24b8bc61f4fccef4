"""optimal_thresholds and detections materialised from in-memory models, thresholds and manifests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as pads
import pytest

from creative_assets.assets.detection import THRESHOLD_COLUMNS, detections, optimal_thresholds
from creative_assets.detection.selection import NO_MODEL, no_model_row
from creative_assets.resources.warehouse_io_manager import TableRef
from creative_assets_tests.support.asset_runs import (
    BRAND,
    Invocation,
    brand_context,
    ingest_in_memory,
    invoke,
    pair_context,
    smoke_settings,
    tiny_data_root,
    train_in_memory,
)

CLASSES = ["logo", "product", "brand_cue"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data_root(tmp_path_factory.mktemp("detection") / "data")


@pytest.fixture(scope="module")
def upstream(root: Path) -> dict[str, pd.DataFrame]:
    ingested = ingest_in_memory(root)
    return {**ingested, **train_in_memory(root, ingested["labels"])}


@pytest.fixture(scope="module")
def thresholds(root: Path, upstream: dict[str, pd.DataFrame]) -> Invocation:
    return invoke(
        optimal_thresholds,
        pair_context(BRAND, "branding"),
        settings=smoke_settings(root),
        chosen_model=upstream["chosen_model"],
        coco_datasets=upstream["coco_datasets"],
    )


def test_thresholds_give_each_class_a_swept_value_shown_in_metadata(
    thresholds: Invocation, upstream: dict[str, pd.DataFrame]
) -> None:
    table = thresholds.value
    assert list(table.columns) == THRESHOLD_COLUMNS
    assert table["class_name"].tolist() == CLASSES
    assert set(table["model_id"]) == {upstream["chosen_model"]["model_id"].iloc[0]}
    for row in table.itertuples():
        assert 0.20 <= row.threshold <= 0.99
        assert round(row.threshold * 100) == pytest.approx(row.threshold * 100)  # on the 0.01 grid
        assert thresholds.meta(f"threshold_{row.class_name}") == row.threshold
        assert thresholds.meta(f"test_accuracy_{row.class_name}") == row.test_accuracy
        assert "data:image/png;base64," in thresholds.meta(f"curve_{row.class_name}")
    assert "recall50_at_threshold" in thresholds.meta("test_by_size")


def test_thresholds_of_a_no_model_pair_are_an_empty_table_with_the_schema(
    root: Path, upstream: dict[str, pd.DataFrame]
) -> None:
    run = invoke(
        optimal_thresholds,
        pair_context(BRAND, "face"),
        settings=smoke_settings(root),
        chosen_model=no_model_row(BRAND, "face", "smoke"),
        coco_datasets=upstream["coco_datasets"].iloc[0:0],
    )

    assert run.value.empty and list(run.value.columns) == THRESHOLD_COLUMNS
    assert run.meta("status") == NO_MODEL


def _detect(root: Path, upstream: dict[str, pd.DataFrame], chosen: dict, thresholds: dict) -> Invocation:
    return invoke(
        detections,
        brand_context(),
        settings=smoke_settings(root),
        creative_manifest=upstream["creative_manifest"],
        video_frames=upstream["video_frames"],
        chosen_model=chosen,
        optimal_thresholds=thresholds,
    )


def test_detections_use_the_brands_models_and_skip_a_no_model_record(
    root: Path, upstream: dict[str, pd.DataFrame], thresholds: Invocation
) -> None:
    model = upstream["chosen_model"]
    run = _detect(
        root,
        upstream,
        {f"{BRAND}|branding": model, f"{BRAND}|face": no_model_row(BRAND, "face", "smoke")},
        {f"{BRAND}|branding": thresholds.value},
    )

    ref = run.value
    assert isinstance(ref, TableRef)
    on_disk = pads.dataset(root / ref.folder / "", format="parquet", exclude_invalid_files=True).to_table()
    assert ref.rows == on_disk.num_rows == run.meta("rows") > 0
    assert run.meta("models") == f"branding:{model['model_id'].iloc[0]}"
    stills = int((upstream["creative_manifest"]["media_type"] == "image").sum())
    assert run.meta("images") == stills + len(upstream["video_frames"])
    applied = on_disk.to_pandas().drop_duplicates("class_name").set_index("class_name")["threshold"]
    assert (
        applied.to_dict().items() <= thresholds.value.set_index("class_name")["threshold"].to_dict().items()
    )
    check = run.checks["every_batch_committed"]
    assert check.passed and check.metadata["failed_batches"].value == 0
