"""creative_features from hand-made manifest, frames and detections tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creative_assets.tables.features import creative_features
from creative_assets.tables.schemas import DETECTIONS, FEATURE_COLUMNS, check_schema, feature_schema

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
