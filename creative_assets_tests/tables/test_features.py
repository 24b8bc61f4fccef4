"""creative_features from hand-made manifest, frames and detections tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from creative_assets.tables.features import creative_features
from creative_assets.tables.schemas import DETECTIONS, FEATURE_COLUMNS, check_schema, feature_schema
from creative_assets.tables.warehouse import write_part

BRAND = "acme"
OBJECTS = ["logo", "product"]


def manifest() -> pd.DataFrame:
    """Two stills, a 6 s video with 6 sampled frames, and a video whose frames were never extracted."""
    rows = [
        ("img/a.png", "image", np.nan),
        ("img/b.png", "image", np.nan),
        ("vid/v.mp4", "video", 6.0),
        ("vid/w.mp4", "video", 2.0),
    ]
    return pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": [r[0] for r in rows],
            "media_type": [r[1] for r in rows],
            "path": [f"raw/acme/creatives/{r[0]}" for r in rows],
            "duration_s": [r[2] for r in rows],
            "sha256": "0" * 64,
        }
    )


def frames() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": "vid/v.mp4",
            "frame_index": np.arange(0, 60, 10, dtype=np.int64),
            "timestamp_s": np.arange(6, dtype=np.float64),
            "path": [f"frames/acme/vid/v.mp4/{i:06d}.jpg" for i in range(0, 60, 10)],
            "width": 64,
            "height": 48,
        }
    )


def det(
    creative_id: str, obj: str, score: float, area: float, above: bool, second: float | None = None
) -> dict:
    """One detection row; `second` is the frame's timestamp for video frames (frame_index = 10 × second)."""
    video = second is not None
    return {
        "brand": BRAND,
        "creative_id": creative_id,
        "media_type": "video" if video else "image",
        "frame_index": int(second * 10) if video else pd.NA,
        "timestamp_s": second if video else pd.NA,
        "object": obj,
        "class_name": obj,
        "score": score,
        "x_min": 0.0,
        "y_min": 0.0,
        "x_max": 1.0,
        "y_max": 1.0,
        "box_area_frac": area,
        "above_threshold": above,
        "threshold": 0.6,
        "model_id": "m1",
        "model_beats_baseline": True,
        "backend": "test",
        "batch": "b1",
    }


def detections() -> pd.DataFrame:
    rows = [
        det("img/a.png", "logo", 0.95, 0.1, True),
        det("img/a.png", "logo", 0.70, 0.2, True),
        det("img/a.png", "logo", 0.55, 0.5, False),  # big but below threshold: not in area or count
        det("img/a.png", "product", 0.30, 0.4, False),
        det("vid/v.mp4", "logo", 0.50, 0.3, False, second=0.0),  # below threshold: no effect on timing
        det("vid/v.mp4", "logo", 0.90, 0.05, True, second=2.0),
        det("vid/v.mp4", "logo", 0.80, 0.07, True, second=2.0),
        det("vid/v.mp4", "logo", 0.85, 0.02, True, second=4.0),
        det("vid/v.mp4", "product", 0.65, 0.25, True, second=4.0),
        det("vid/v.mp4", "face", 0.99, 0.9, True, second=0.0),  # not an object asked for
    ]
    return DETECTIONS.conform(pd.DataFrame(rows))


@pytest.fixture
def features() -> pd.DataFrame:
    return creative_features(manifest(), detections(), frames(), OBJECTS).set_index("creative_id", drop=False)


def test_every_manifest_creative_has_one_row_with_the_stable_columns(features: pd.DataFrame) -> None:
    assert list(features["creative_id"]) == ["img/a.png", "img/b.png", "vid/v.mp4", "vid/w.mp4"]
    assert list(features.columns) == FEATURE_COLUMNS(OBJECTS)
    assert check_schema(features.reset_index(drop=True), feature_schema(OBJECTS)) == []


def test_creative_without_detections_has_zero_features(features: pd.DataFrame) -> None:
    b = features.loc["img/b.png"]
    assert not b.logo_present and b.logo_count == 0
    assert b.logo_max_score == 0.0 and b.logo_max_area_frac == 0.0


def test_image_counts_found_boxes_and_takes_area_only_above_threshold(features: pd.DataFrame) -> None:
    a = features.loc["img/a.png"]
    assert a.logo_present and a.logo_count == 2
    assert a.logo_max_score == 0.95 and a.logo_max_area_frac == 0.2
    assert not a.product_present and a.product_count == 0
    assert a.product_max_score == 0.30 and a.product_max_area_frac == 0.0


def test_images_have_no_video_timing(features: pd.DataFrame) -> None:
    a = features.loc["img/a.png"]
    assert pd.isna(a.logo_frame_share) and pd.isna(a.logo_first_seen_s)
    assert not a.logo_in_first_3s and not a.logo_in_first_5s
    assert a.frames_sampled == 1


def test_video_count_is_the_most_found_on_one_frame(features: pd.DataFrame) -> None:
    assert features.loc["vid/v.mp4", "logo_count"] == 2
    assert features.loc["vid/v.mp4", "frames_sampled"] == 6


def test_video_timing_uses_found_frames_only(features: pd.DataFrame) -> None:
    v = features.loc["vid/v.mp4"]
    assert v.logo_first_seen_s == 2.0 and v.logo_in_first_3s and v.logo_in_first_5s
    assert v.logo_frame_share == pytest.approx(2 / 6)
    assert v.product_first_seen_s == 4.0 and not v.product_in_first_3s and v.product_in_first_5s
    assert v.product_frame_share == pytest.approx(1 / 6)


def test_video_without_sampled_frames_has_no_share_or_timing(features: pd.DataFrame) -> None:
    w = features.loc["vid/w.mp4"]
    assert w.frames_sampled == 0
    assert pd.isna(w.logo_frame_share) and pd.isna(w.logo_first_seen_s) and not w.logo_in_first_5s


def test_video_without_the_object_has_zero_share(features: pd.DataFrame) -> None:
    with_smile = creative_features(manifest(), detections(), frames(), ["logo", "smile"])
    v = with_smile.set_index("creative_id").loc["vid/v.mp4"]
    assert v.smile_frame_share == 0.0 and pd.isna(v.smile_first_seen_s) and not v.smile_present


def test_features_from_an_empty_detections_table_keep_every_creative() -> None:
    empty = creative_features(manifest(), DETECTIONS.empty(), frames(), OBJECTS)
    assert len(empty) == 4 and not empty["logo_present"].any()
    assert check_schema(empty, feature_schema(OBJECTS)) == []


def test_features_from_the_warehouse_folder_equal_those_from_the_table(tmp_path: Path) -> None:
    folder = tmp_path / "warehouse" / "detections" / f"brand={BRAND}"
    table = detections()
    for i, start in enumerate(range(0, len(table), 3)):  # several parts, a video's frames split across them
        write_part(folder / f"part-{i:05d}.parquet", table.iloc[start : start + 3])

    from_folder = creative_features(manifest(), folder, frames(), OBJECTS, batch_rows=2)

    pd.testing.assert_frame_equal(from_folder, creative_features(manifest(), table, frames(), OBJECTS))


def test_an_empty_warehouse_folder_gives_zero_features(tmp_path: Path) -> None:
    folder = tmp_path / "warehouse" / "detections" / f"brand={BRAND}"
    folder.mkdir(parents=True)

    empty = creative_features(manifest(), folder, frames(), OBJECTS)

    pd.testing.assert_frame_equal(empty, creative_features(manifest(), DETECTIONS.empty(), frames(), OBJECTS))


def _random_detections(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Detections of every object over the manifest's creatives, stills without frames, videos on 6 frames."""
    picks = []
    for _ in range(rows):
        creative_id = ["img/a.png", "img/b.png", "vid/v.mp4"][rng.integers(3)]
        second = float(rng.integers(6)) if creative_id.startswith("vid") else None
        score = float(rng.uniform(0.2, 1.0))
        picks.append(
            det(
                creative_id,
                ["logo", "product", "face"][rng.integers(3)],
                score,
                float(rng.uniform()),
                score > 0.6,
                second,
            )
        )
    return DETECTIONS.conform(pd.DataFrame(picks))


ORACLE_SQL = """
SELECT creative_id, object,
       coalesce(max(n), 0) AS count, coalesce(max(score), 0.0) AS max_score,
       coalesce(max(area), 0.0) AS max_area_frac, count(DISTINCT found_frame) AS frames_with, min(first_s) AS first
FROM (
  SELECT creative_id, object, frame_index, max(score) AS score,
         sum(CASE WHEN above_threshold THEN 1 END) AS n,
         max(CASE WHEN above_threshold THEN box_area_frac END) AS area,
         max(CASE WHEN above_threshold THEN frame_index END) AS found_frame,
         min(CASE WHEN above_threshold THEN timestamp_s END) AS first_s
  FROM dets GROUP BY creative_id, object, frame_index
) GROUP BY creative_id, object
"""


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_equal_duckdbs_aggregation_of_random_detections(seed: int) -> None:
    dets = _random_detections(np.random.default_rng(seed), 120)
    # 3 rows a step: 40 partial aggregates, so they are also merged on the way (MAX_PARTIALS)
    features = creative_features(manifest(), dets, frames(), OBJECTS, batch_rows=3).set_index("creative_id")
    oracle = _connection(dets).sql(ORACLE_SQL).df()

    for row in oracle.itertuples():
        if row.object not in OBJECTS:
            continue
        got = features.loc[row.creative_id]
        o = row.object
        assert got[f"{o}_count"] == row.count
        assert got[f"{o}_max_score"] == pytest.approx(row.max_score)
        assert got[f"{o}_max_area_frac"] == pytest.approx(row.max_area_frac)
        if row.creative_id == "vid/v.mp4":
            assert got[f"{o}_frame_share"] == pytest.approx(row.frames_with / 6)
            assert (pd.isna(got[f"{o}_first_seen_s"]) and pd.isna(row.first)) or got[
                f"{o}_first_seen_s"
            ] == row.first
    seen = {(r.creative_id, r.object) for r in oracle.itertuples()}
    for creative_id in features.index:
        for o in OBJECTS:
            if (creative_id, o) not in seen:
                assert (
                    features.loc[creative_id, f"{o}_count"] == 0
                    and features.loc[creative_id, f"{o}_max_score"] == 0
                )


def _connection(dets: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register("dets", dets.astype({"frame_index": "float64", "timestamp_s": "float64"}))
    return connection
