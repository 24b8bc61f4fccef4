"""The labelling queue's scores and selection, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creative_assets.labels.queue import (
    LABELLING_QUEUE,
    brand_images,
    class_max_scores,
    impression_weights,
    labelling_queue,
    margin_uncertainty,
    score_images,
    select_queue,
    temporal_disagreement,
)
from creative_assets.tables.schemas import check_schema

BRAND = "acme"


def manifest(stills: list[str], videos: list[str]) -> pd.DataFrame:
    rows = [
        {"brand": BRAND, "creative_id": c, "media_type": "image", "path": f"raw/{BRAND}/creatives/{c}",
         "width": 64, "height": 48}
        for c in stills
    ] + [
        {"brand": BRAND, "creative_id": c, "media_type": "video", "path": f"raw/{BRAND}/creatives/{c}",
         "width": 64, "height": 48}
        for c in videos
    ]  # fmt: skip
    return pd.DataFrame(rows).astype({"width": "Int64", "height": "Int64"})


def frames(video: str, indices: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": video,
            "frame_index": indices,
            "timestamp_s": [i / 10 for i in indices],
            "path": [f"frames/{BRAND}/{video}/{i:06d}.jpg" for i in indices],
            "width": 64,
            "height": 48,
        }
    )


def detection(creative: str, frame: int | None, class_name: str, score: float) -> dict:
    return {"creative_id": creative, "frame_index": frame, "class_name": class_name, "score": score}


def dets(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["creative_id", "frame_index", "class_name", "score"])
    return df.astype({"frame_index": "Int64"})


def test_margin_uncertainty_is_one_at_the_threshold_and_zero_at_certainty():
    scores = np.array([0.0, 0.15, 0.3, 0.65, 1.0])
    assert margin_uncertainty(scores, np.array(0.3)).tolist() == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])


def test_margin_uncertainty_refuses_a_threshold_of_zero():
    with pytest.raises(ValueError, match="between 0 and 1"):
        margin_uncertainty(np.array([0.5]), np.array([0.0]))


def test_class_max_scores_takes_each_class_best_and_zero_where_none():
    images = brand_images(manifest(["a.jpg"], ["v.mp4"]), frames("v.mp4", [0, 10]))
    table = dets(
        [
            detection("a.jpg", None, "logo", 0.4),
            detection("a.jpg", None, "logo", 0.7),
            detection("v.mp4", 10, "product", 0.55),
            detection("v.mp4", 10, "face", 0.99),  # another object's class: not counted
        ]
    )
    scores = class_max_scores(images, table, ["logo", "product"])
    # rows: a.jpg, v.mp4#0, v.mp4#10
    assert scores.tolist() == [[0.7, 0.0], [0.0, 0.0], [0.0, 0.55]]


def test_temporal_disagreement_counts_neighbours_at_plus_minus_stride():
    images = brand_images(manifest(["a.jpg"], ["v.mp4"]), frames("v.mp4", [0, 10, 20, 30]))
    # rows: a.jpg, v#0, v#10, v#20, v#30; one class present only on frame 10
    present = np.array([[True], [False], [True], [False], [False]])
    assert temporal_disagreement(images, present, stride=10).tolist() == [0.0, 1.0, 1.0, 0.5, 0.0]


def test_temporal_disagreement_is_the_largest_over_classes():
    images = brand_images(manifest([], ["v.mp4"]), frames("v.mp4", [0, 10, 20]))
    # logo agrees everywhere; product turns on at frame 20: frame 10 has one neighbour of two disagreeing
    present = np.array([[True, False], [True, False], [True, True]])
    assert temporal_disagreement(images, present, stride=10).tolist() == [0.0, 0.5, 1.0]


def test_temporal_disagreement_ignores_frames_not_at_the_stride():
    images = brand_images(manifest([], ["v.mp4"]), frames("v.mp4", [0, 5, 20]))
    present = np.array([[True], [False], [False]])
    assert temporal_disagreement(images, present, stride=10).tolist() == [0.0, 0.0, 0.0]


def test_weights_are_each_creatives_share_of_impressions():
    impressions = pd.DataFrame(
        {"creative_id": ["a.jpg", "a.jpg", "b.jpg"], "impressions": [300.0, 100.0, 600.0]}
    )
    weights, how = impression_weights(impressions, ["a.jpg", "b.jpg", "c.jpg"])
    assert weights.to_dict() == pytest.approx({"a.jpg": 0.4, "b.jpg": 0.6, "c.jpg": 0.0})
    assert how == "share of the brand's impressions"


def test_weights_are_uniform_without_impressions():
    weights, how = impression_weights(None, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    assert weights.tolist() == [0.25] * 4
    assert how.startswith("uniform")


def test_priority_is_uncertainty_times_weight():
    images = brand_images(manifest(["a.jpg", "b.jpg"], []), frames("v.mp4", [])[0:0])
    table = dets([detection("a.jpg", None, "logo", 0.45), detection("b.jpg", None, "logo", 0.9)])
    weights = pd.Series({"a.jpg": 0.25, "b.jpg": 0.75})
    scored = score_images(images, table, {"logo": 0.5}, stride=10, weights=weights)
    # a: 0.45 / 0.5 = 0.9; b: (1 - 0.9) / (1 - 0.5) = 0.2
    assert scored["uncertainty"].tolist() == pytest.approx([0.9, 0.2])
    assert scored["priority"].tolist() == pytest.approx([0.9 * 0.25, 0.2 * 0.75])
    assert scored["top_class"].tolist() == ["logo", "logo"]


def _scored(priorities: dict[tuple[str, int | None], float]) -> pd.DataFrame:
    rows = []
    for (creative, frame), p in priorities.items():
        path = (
            f"raw/{BRAND}/creatives/{creative}"
            if frame is None
            else f"frames/{BRAND}/{creative}/{frame:06d}.jpg"
        )
        rows.append({"creative_id": creative, "frame_index": frame, "image_path": path, "priority": p,
                     "uncertainty": p})  # fmt: skip
    return pd.DataFrame(rows).astype({"frame_index": "Int64"})


def test_selection_is_diverse_and_keeps_a_videos_frames_together():
    scored = _scored(
        {
            ("v.mp4", 0): 0.9,
            ("v.mp4", 10): 0.8,  # a direct neighbour of frame 0: left out
            ("v.mp4", 20): 0.85,  # second frame of v counts 0.85 / 2 = 0.425 < a's 0.5
            ("v.mp4", 30): 0.1,
            ("v.mp4", 40): 0.7,  # third frame of v would count 0.7 / 3 < b's 0.3
            ("a.jpg", None): 0.5,
            ("b.jpg", None): 0.3,
        }
    )
    queue = select_queue(scored, labelled=[], size=4, max_frames_per_video=3, stride=10)
    # picked in the order v#0, a, v#20, b; listed with v's frames together at v's first pick
    assert list(zip(queue["rank"], queue["creative_id"], queue["frame_index"].tolist(), strict=True)) == [
        (1, "v.mp4", 0),
        (2, "v.mp4", 20),
        (3, "a.jpg", pd.NA),
        (4, "b.jpg", pd.NA),
    ]


def test_selection_caps_the_frames_of_one_video():
    scored = _scored({("v.mp4", i): 1.0 - i / 1000 for i in range(0, 200, 20)})
    queue = select_queue(scored, labelled=[], size=10, max_frames_per_video=3, stride=10)
    assert queue["frame_index"].tolist() == [0, 20, 40]


def test_selection_leaves_out_labelled_images():
    scored = _scored({("a.jpg", None): 0.9, ("b.jpg", None): 0.5, ("c.jpg", None): 0.1})
    queue = select_queue(
        scored, labelled=[f"raw/{BRAND}/creatives/a.jpg"], size=5, max_frames_per_video=3, stride=10
    )
    assert queue["creative_id"].tolist() == ["b.jpg", "c.jpg"]


def test_queue_has_the_table_schema_and_is_empty_without_a_model():
    images = brand_images(manifest(["a.jpg"], ["v.mp4"]), frames("v.mp4", [0, 10]))
    weights = pd.Series({"a.jpg": 0.5, "v.mp4": 0.5})
    common = {"labelled": [], "weights": weights, "size": 5, "max_frames_per_video": 3, "stride": 10}
    table = dets([detection("v.mp4", 10, "logo", 0.5)])
    queue = labelling_queue(BRAND, "logo", images, table, {"logo": 0.5}, model_id="m1", **common)
    assert check_schema(queue, LABELLING_QUEUE) == []
    # v#10 at the threshold (1.0) and v#0 disagreeing with it (1.0) are one stride apart: v#0 (first by
    # frame order on the tie) stays; the still has uncertainty 0
    assert queue["image_path"].tolist() == [
        f"frames/{BRAND}/v.mp4/000000.jpg",
        f"raw/{BRAND}/creatives/a.jpg",
    ]
    assert queue["priority"].tolist() == pytest.approx([0.5, 0.0])
    empty = labelling_queue(BRAND, "logo", images, table, {}, model_id=None, **common)
    assert len(empty) == 0 and check_schema(empty, LABELLING_QUEUE) == []
