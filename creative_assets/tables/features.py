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

The detections table is the biggest a brand has (about 9 KB a creative). It is never loaded whole: it is read
in Arrow record batches of the eight columns the features need, each batch is reduced to one row per
(creative, object, frame) with found boxes and one per (creative, object) for the best score, and only those
partial aggregates (associative: counts add, maxima and minima combine) are kept and combined at the end.
Memory follows the number of creatives and sampled frames, not the number of detections.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from creative_assets.tables.schemas import feature_schema
from creative_assets.tables.warehouse import hive_values, part_files

EARLY_WINDOWS_S = (3, 5)
# Columns of the detections table the features are computed from.
NEEDED = [
    "brand",
    "creative_id",
    "object",
    "frame_index",
    "timestamp_s",
    "score",
    "box_area_frac",
    "above_threshold",
]
# Rows reduced in one step: bounds the memory of a step. Detection parts are small (a batch of creatives
# each), so their record batches are gathered up to this many rows before a step. Measured on 1,400 parts of
# 100k rows: 8192 rows a step kept RSS within 30 MB of the start, 65536 (~900 small batches held) took 57 MB.
BATCH_ROWS = 8192
# Partial aggregates held before they are merged into one, so their number does not grow with the table.
MAX_PARTIALS = 32

# detections: a DataFrame, or the warehouse folder of one brand's detections (read in batches).
Detections = pd.DataFrame | Path


def creative_features(
    manifest: pd.DataFrame,
    detections: Detections,
    frames: pd.DataFrame,
    objects: Sequence[str],
    batch_rows: int = BATCH_ROWS,
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

    per_frame, best = detection_aggregates(detections, objects, batch_rows)
    for o in objects:
        found = per_frame[per_frame["object"] == o]
        by_creative = found.groupby(["brand", "creative_id"])
        count_v = by_creative["found"].max().reindex(keys, fill_value=0).to_numpy(dtype=np.int64)
        max_score = best[best["object"] == o].set_index(["brand", "creative_id"])["score"]
        out[f"{o}_present"] = count_v > 0
        out[f"{o}_count"] = count_v
        out[f"{o}_max_score"] = max_score.reindex(keys).fillna(0.0).to_numpy(dtype=np.float64)
        out[f"{o}_max_area_frac"] = (
            by_creative["area"].max().reindex(keys).fillna(0.0).to_numpy(dtype=np.float64)
        )
        # Stills have no frame_index: they count no frames (their share is <NA> anyway).
        frames_with = found[found["frame_index"].notna()].groupby(["brand", "creative_id"]).size()
        with np.errstate(divide="ignore", invalid="ignore"):
            share = frames_with.reindex(keys, fill_value=0).to_numpy(dtype=np.float64) / sampled
        out[f"{o}_frame_share"] = pd.array(np.where(is_video & (sampled > 0), share, np.nan), dtype="Float64")
        first = by_creative["first_s"].min().reindex(keys).to_numpy(dtype=np.float64, na_value=np.nan)
        first = np.where(is_video, first, np.nan)
        out[f"{o}_first_seen_s"] = pd.array(first, dtype="Float64")
        for window in EARLY_WINDOWS_S:
            out[f"{o}_in_first_{window}s"] = np.nan_to_num(first, nan=np.inf) < window
    return schema.conform(pd.DataFrame(out))


def detection_aggregates(
    detections: Detections, objects: Sequence[str], batch_rows: int = BATCH_ROWS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The detections of `objects` reduced batch by batch to two small tables:

    - found per frame: brand, creative_id, object, frame_index (<NA> for a still), `found` (boxes above
      threshold), `area` (largest such box's area share), `first_s` (that frame's timestamp);
    - best score: brand, creative_id, object, `score` (highest kept score, found or not).
    """
    wanted = pa.array(list(objects), pa.string())
    frame_parts: list[pa.Table] = []
    score_parts: list[pa.Table] = []
    for chunk in _chunks(_batches(detections, batch_rows), batch_rows):
        mine = chunk.filter(pc.is_in(chunk.column("object"), value_set=wanted))
        score_parts.append(_best_scores(mine))
        frame_parts.append(_found_per_frame(mine.filter(pc.equal(mine.column("above_threshold"), True))))
        if len(frame_parts) >= MAX_PARTIALS:
            frame_parts, score_parts = [_merge_frames(frame_parts)], [_merge_scores(score_parts)]
    per_frame = _combine_frames(frame_parts)
    best = _combine_scores(score_parts)
    brand = hive_values(detections).get("brand") if isinstance(detections, Path) else None
    for table in (per_frame, best):
        if "brand" not in table.columns:
            table.insert(0, "brand", brand)
        table["brand"] = table["brand"].astype(object)
        table["creative_id"] = table["creative_id"].astype(object)
    return per_frame, best


def _keys(table: pa.Table) -> list[str]:
    """Grouping keys: the brand where the rows carry it (a warehouse folder names it in its path)."""
    return (["brand"] if "brand" in table.column_names else []) + ["creative_id", "object"]


def _best_scores(table: pa.Table) -> pa.Table:
    return (
        table.group_by(_keys(table), use_threads=False)
        .aggregate([("score", "max")])
        .rename_columns([*_keys(table), "score"])
    )


def _found_per_frame(table: pa.Table) -> pa.Table:
    keys = [*_keys(table), "frame_index"]
    aggregated = table.group_by(keys, use_threads=False).aggregate(
        [([], "count_all"), ("box_area_frac", "max"), ("timestamp_s", "min")]
    )
    return aggregated.rename_columns([*keys, "found", "area", "first_s"])


def _merge_frames(parts: list[pa.Table]) -> pa.Table:
    """Partial per-frame aggregates merged into one: a frame's rows may sit in several chunks."""
    table = pa.concat_tables(parts, promote_options="permissive")
    keys = [*_keys(table), "frame_index"]
    merged = table.group_by(keys, use_threads=False).aggregate(
        [("found", "sum"), ("area", "max"), ("first_s", "min")]
    )
    return merged.rename_columns([*keys, "found", "area", "first_s"])


def _merge_scores(parts: list[pa.Table]) -> pa.Table:
    table = pa.concat_tables(parts, promote_options="permissive")
    merged = table.group_by(_keys(table), use_threads=False).aggregate([("score", "max")])
    return merged.rename_columns([*_keys(table), "score"])


def _combine_frames(parts: list[pa.Table]) -> pd.DataFrame:
    columns = ["creative_id", "object", "frame_index", "found", "area", "first_s"]
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64" if c in ("area", "first_s") else object) for c in columns}
        )
    return _merge_frames(parts).to_pandas()


def _combine_scores(parts: list[pa.Table]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(
            {
                "creative_id": pd.Series(dtype=object),
                "object": pd.Series(dtype=object),
                "score": pd.Series(dtype="float64"),
            }
        )
    return _merge_scores(parts).to_pandas()


def _batches(detections: Detections, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of the columns the features need, from a DataFrame or a warehouse folder."""
    if isinstance(detections, Path):
        # Part by part: a pyarrow dataset over the folder keeps every fragment's metadata while it scans
        # (measured: +100 MB RSS over 1,400 parts of 100k rows), one file at a time keeps nothing.
        for path in part_files(detections):
            with pq.ParquetFile(path) as part:
                columns = [c for c in NEEDED if c in part.schema_arrow.names]
                yield from part.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False)
        return
    frame = detections[[c for c in NEEDED if c in detections.columns]]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    yield from table.to_batches(max_chunksize=batch_rows)


def _chunks(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The batches gathered into tables of about `rows` rows (the last may be smaller)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield _table(held)
            held, count = [], 0
    if held:
        yield _table(held)


def _table(batches: list[pa.RecordBatch]) -> pa.Table:
    # Parts written by other versions may type a column differently (string / large_string).
    return pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="permissive")
