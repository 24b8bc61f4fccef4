"""Table schemas, check_schema, and reading warehouse parts back with their dtypes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from creative_assets.atomic import atomic_write_parquet
from creative_assets.tables.schemas import (
    DETECTION_COLUMNS,
    DETECTIONS,
    FEATURE_COLUMNS,
    check_schema,
    mmm_features_schema,
    mmm_panel_schema,
)
from creative_assets.tables.warehouse import part_path, read_detections, read_table


def one_detection(**changes) -> pd.DataFrame:
    row = {
        "brand": "acme",
        "creative_id": "img/a.png",
        "media_type": "image",
        "frame_index": pd.NA,
        "timestamp_s": pd.NA,
        "object": "logo",
        "class_name": "logo",
        "score": 0.9,
        "x_min": 1.0,
        "y_min": 2.0,
        "x_max": 3.0,
        "y_max": 4.0,
        "box_area_frac": 0.01,
        "above_threshold": True,
        "threshold": 0.5,
        "model_id": "m1",
        "model_beats_baseline": True,
        "backend": "torchvision",
        "batch": "k1",
    }
    row.update(changes)
    return DETECTIONS.conform(pd.DataFrame([row]))


def test_a_conformed_table_has_no_problems() -> None:
    assert check_schema(one_detection(), DETECTIONS) == []
    assert check_schema(DETECTIONS.empty(), DETECTIONS) == []


def test_check_schema_reports_a_missing_column() -> None:
    assert check_schema(one_detection().drop(columns="score"), DETECTIONS) == ["missing column 'score'"]


def test_check_schema_reports_a_wrong_dtype() -> None:
    df = one_detection().astype({"frame_index": "float64"})
    assert check_schema(df, DETECTIONS) == ["column 'frame_index' has dtype float64, expected Int64"]


def test_check_schema_reports_null_keys() -> None:
    df = one_detection(creative_id=None)
    assert check_schema(df, DETECTIONS) == ["key column 'creative_id' has 1 null value(s)"]


def test_check_schema_reports_an_unexpected_column() -> None:
    df = one_detection().assign(extra=1)
    assert check_schema(df, DETECTIONS) == ["unexpected column 'extra'"]


def test_feature_columns_keep_the_object_order() -> None:
    columns = FEATURE_COLUMNS(["smile", "logo"])
    assert columns[:5] == ["brand", "creative_id", "media_type", "duration_s", "frames_sampled"]
    assert columns.index("smile_present") < columns.index("logo_present")
    assert columns[5:13] == [
        "smile_present",
        "smile_count",
        "smile_max_score",
        "smile_max_area_frac",
        "smile_frame_share",
        "smile_first_seen_s",
        "smile_in_first_3s",
        "smile_in_first_5s",
    ]


def test_mmm_features_has_a_channel_key_only_when_split_by_channel() -> None:
    assert "channel" not in mmm_features_schema(["logo"]).columns
    assert mmm_features_schema(["logo"], by_channel=True).keys == ("week_start", "brand", "channel")


def test_mmm_panel_columns_in_order() -> None:
    assert mmm_panel_schema(["logo"], ["social", "tv"]).columns == [
        "week_start",
        "brand",
        "creatives",
        "unmatched_creatives",
        "impressions",
        "spend",
        "unmatched_impressions",
        "unmatched_spend",
        "video_impressions",
        "impressions_social",
        "spend_social",
        "impressions_tv",
        "spend_tv",
        "spend_social_logo",
        "spend_social_no_logo",
        "spend_tv_logo",
        "spend_tv_no_logo",
        "share_logo",
        "share_logo_in_first_3s",
        "share_logo_in_first_5s",
        "frame_share_logo",
    ]


def test_mmm_panel_refuses_two_columns_with_one_name() -> None:
    # channel "tv_logo" would give spend_tv_logo, as does channel "tv" with object "logo"
    with pytest.raises(ValueError, match="spend_tv_logo"):
        mmm_panel_schema(["logo"], ["tv", "tv_logo"])


def test_mmm_panel_impressions_follow_the_source_dtype() -> None:
    dtypes = mmm_panel_schema(["logo"], ["tv"], impressions_dtype="float64").dtypes
    assert dtypes["impressions_tv"] == "float64" and dtypes["creatives"] == "int64"
    assert mmm_panel_schema(["logo"], ["tv"]).dtypes["impressions_tv"] == "int64"


def test_reading_a_folder_without_parts_gives_the_typed_empty_table(tmp_path: Path) -> None:
    table = read_detections(tmp_path / "never_written")
    assert table.empty and list(table.columns) == DETECTION_COLUMNS
    assert check_schema(table, DETECTIONS) == []


def test_reading_parts_keeps_dtypes_and_skips_temporaries(tmp_path: Path) -> None:
    atomic_write_parquet(part_path(tmp_path, "k1"), DETECTIONS.arrow_schema().empty_table())
    atomic_write_parquet(part_path(tmp_path, "k2"), one_detection(batch="k2"))
    (tmp_path / ".part-k3.parquet.abc.tmp").write_bytes(b"half written")
    table = read_table(tmp_path, DETECTIONS)
    assert check_schema(table, DETECTIONS) == []
    assert table["batch"].tolist() == ["k2"] and pd.isna(table["frame_index"].iloc[0])
