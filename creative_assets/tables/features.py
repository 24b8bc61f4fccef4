"""Creative features: one row per creative saying which brand objects it shows, how often, how big and when.

Definitions (per object `o`; "found" means a detection with `above_threshold`):
- `o_present`: the object is found on the image or on at least one sampled frame of the video.
- `o_count`: found detections on the image; for a video the most found on any one frame (a logo visible on
  every frame of a 30-frame sample is one logo, not 30).
- `o_max_score`: highest score of any kept detection (above the score floor, found or not); 0.0 if none.
- `o_max_area_frac`: the largest found box as a share of the image area; 0.0 if none.
- Videos only: `o_frame_share` = frames with the object found / frames sampled; `o_first_seen_s` = timestamp of
  the first such frame; `o_in_first_3s` / `o_in_first_5s` = first seen before 3 s / 5 s (frames at t < 3.0 s).
  For still images `o_frame_share` and `o_first_seen_s` are <NA> and the `in_first` flags are False; for a
  video with no frames sampled `o_frame_share` is <NA>.
- `frames_sampled`: images the detector looked at: 1 for a still, the extracted frames for a video (frames
  that failed to decode still count, so the share errs low rather than high).
Every creative of the manifest has a row, including those with no detections at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from creative_assets.tables.schemas import feature_schema

EARLY_WINDOWS_S = (3, 5)


def creative_features(
    manifest: pd.DataFrame, detections: pd.DataFrame, frames: pd.DataFrame, objects: Sequence[str]
) -> pd.DataFrame:
    """One row per creative of `manifest` with per-object presence, counts, scores, area and video timing."""
    schema = feature_schema(objects)
    base = manifest[["brand", "creative_id", "media_type", "duration_s"]].astype(
        {"brand": "string", "creative_id": "string", "media_type": "string", "duration_s": "float64"}
    )
    base = base.sort_values(["brand", "creative_id"], kind="mergesort").reset_index(drop=True)
    keys = pd.MultiIndex.from_frame(base[["brand", "creative_id"]].astype(object))
    is_video = (base["media_type"] == "video").to_numpy()

    frame_counts = (
        frames.groupby(["brand", "creative_id"]).size() if len(frames) else pd.Series(dtype="int64")
    )
    sampled = frame_counts.reindex(keys, fill_value=0).to_numpy(dtype=np.int64)
    sampled = np.where(is_video, sampled, 1)
    out: dict[str, object] = {c: base[c] for c in base.columns}
    out["frames_sampled"] = sampled

    det = detections[detections["object"].isin(list(objects))]
    det = det.assign(brand=det["brand"].astype(object), creative_id=det["creative_id"].astype(object))
    for o in objects:
        mine = det[det["object"] == o]
        found = mine[mine["above_threshold"]]
        max_score = mine.groupby(["brand", "creative_id"])["score"].max()
        by_creative = found.groupby(["brand", "creative_id"])
        # frame_index is <NA> for stills: keep those groups so a still counts as one "frame".
        per_frame = found.groupby(["brand", "creative_id", "frame_index"], dropna=False).size()
        count = per_frame.groupby(level=["brand", "creative_id"]).max()
        frames_with = found.groupby(["brand", "creative_id"])["frame_index"].nunique()
        first_seen = by_creative["timestamp_s"].min()

        count_v = count.reindex(keys, fill_value=0).to_numpy(dtype=np.int64)
        out[f"{o}_present"] = count_v > 0
        out[f"{o}_count"] = count_v
        out[f"{o}_max_score"] = max_score.reindex(keys).fillna(0.0).to_numpy(dtype=np.float64)
        out[f"{o}_max_area_frac"] = (
            by_creative["box_area_frac"].max().reindex(keys).fillna(0.0).to_numpy(dtype=np.float64)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            share = frames_with.reindex(keys, fill_value=0).to_numpy(dtype=np.float64) / sampled
        out[f"{o}_frame_share"] = pd.array(np.where(is_video & (sampled > 0), share, np.nan), dtype="Float64")
        first = first_seen.reindex(keys).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        first = np.where(is_video, first, np.nan)
        out[f"{o}_first_seen_s"] = pd.array(first, dtype="Float64")
        for window in EARLY_WINDOWS_S:
            out[f"{o}_in_first_{window}s"] = np.nan_to_num(first, nan=np.inf) < window
    return schema.conform(pd.DataFrame(out))
