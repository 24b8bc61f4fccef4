"""What to label next: a brand × object's unlabelled images and frames ranked by uncertainty × media weight.

Labelling is the costliest step; once a model exists most frames teach it nothing. An image earns a place in
the queue when the model is unsure about it, and more so when the creative carries many impressions, because
an error there moves the MMM panel most. Every quantity is computed per image (a still or an extracted
frame) from the `detections` table and the per-class thresholds of `optimal_thresholds`:

- **score** `s_c`: the highest detection score of class `c` on the image; 0 when the model kept none
  (detections below `detection.score_floor` are not stored, so they count as 0).
- **margin uncertainty** (closeness of the score to the class threshold `t_c`): a tent that is 1 at the
  threshold and falls linearly to 0 at a score of 0 or 1: `s / t` below the threshold, `(1 - s) / (1 - t)`
  at or above it. The image's margin uncertainty is its largest over the object's classes.
- **temporal disagreement** (frames only): the neighbours of frame `i` are the frames at `i - stride` and
  `i + stride` that exist; for each class, the share of neighbours whose presence (`s ≥ t`) differs from
  frame `i`'s; the largest over the classes. 1 is a one-frame flicker (both neighbours say the opposite),
  0.5 a boundary. Stills have 0.
- **uncertainty** = max(margin uncertainty, temporal disagreement), in [0, 1].
- **weight** = the creative's share of the brand's impressions (`raw/impressions.*`, summed over all dates);
  a frame carries its video's weight. A creative without impressions weighs 0 (it is not on air, so its
  errors do not reach the panel). Without impressions for the brand every creative weighs 1 / creatives.
- **priority** = uncertainty × weight.

Selection (`select_queue`) takes images not yet labelled in priority order, greedily, with three rules that
keep a round diverse: the n-th frame taken from one video counts 1/n of its priority when compared with the
rest; a video gives at most `max_frames_per_video` frames; and two queued frames of one video are more than
one stride apart (direct neighbours look alike). Ties go to the higher uncertainty, then creative id and frame
order. The queue lists a video's frames together, in frame order, at the place of its first pick; `rank`
numbers that order from 1.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from creative_assets.tables.schemas import TableSchema

LABELLING_QUEUE = TableSchema(
    "labelling_queue",
    {
        "brand": "string",
        "object": "string",
        "rank": "int64",
        "creative_id": "string",
        "media_type": "string",
        "frame_index": "Int64",  # <NA> for still images
        "timestamp_s": "Float64",  # <NA> for still images
        "image_path": "string",  # under the data root, as the labels table names images
        "width": "int64",
        "height": "int64",
        "priority": "float64",
        "uncertainty": "float64",
        "margin_uncertainty": "float64",
        "temporal_disagreement": "float64",
        "impression_weight": "float64",
        "top_class": "string",  # the class whose score lies closest to its threshold
        "top_score": "float64",
        "threshold": "float64",
        "model_id": "string",
    },
    keys=("brand", "object", "rank", "creative_id", "media_type", "image_path"),
)
IMAGE_COLUMNS = [
    "brand", "creative_id", "media_type", "frame_index", "timestamp_s", "image_path", "width", "height",
]  # fmt: skip
NO_FRAME = -1  # the frame key of a still image


def frame_keys(frame_index: pd.Series) -> pd.Series:
    """Frame indices as int64 keys, NO_FRAME for a still image (frame_index <NA>), so stills and frames join."""
    return frame_index.astype("Int64").fillna(NO_FRAME).astype("int64")


def brand_images(manifest: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """Every image of the brand the detector sees: still creatives and extracted frames (IMAGE_COLUMNS)."""
    stills = manifest[manifest["media_type"] == "image"]
    still_rows = pd.DataFrame(
        {
            "brand": stills["brand"].astype("string").to_numpy(),
            "creative_id": stills["creative_id"].astype("string").to_numpy(),
            "media_type": "image",
            "frame_index": pd.array([pd.NA] * len(stills), dtype="Int64"),
            "timestamp_s": pd.array([pd.NA] * len(stills), dtype="Float64"),
            "image_path": stills["path"].astype("string").to_numpy(),
            "width": pd.to_numeric(stills["width"]).fillna(0).astype("int64").to_numpy(),
            "height": pd.to_numeric(stills["height"]).fillna(0).astype("int64").to_numpy(),
        }
    )
    frame_rows = pd.DataFrame(
        {
            "brand": frames["brand"].astype("string").to_numpy(),
            "creative_id": frames["creative_id"].astype("string").to_numpy(),
            "media_type": "video",
            "frame_index": frames["frame_index"].astype("Int64").to_numpy(),
            "timestamp_s": frames["timestamp_s"].astype("Float64").to_numpy(),
            "image_path": frames["path"].astype("string").to_numpy(),
            "width": frames["width"].astype("int64").to_numpy(),
            "height": frames["height"].astype("int64").to_numpy(),
        }
    )
    parts = [p for p in (still_rows, frame_rows) if len(p)]
    out = pd.concat(parts, ignore_index=True) if parts else still_rows
    dtypes = {c: LABELLING_QUEUE.dtypes[c] for c in IMAGE_COLUMNS}
    out = out[IMAGE_COLUMNS].astype(dtypes)
    order = out.sort_values(["creative_id", "frame_index"], na_position="first", kind="mergesort").index
    return out.loc[order].reset_index(drop=True)


def _image_keys(df: pd.DataFrame) -> pd.MultiIndex:
    frame = frame_keys(df["frame_index"])
    return pd.MultiIndex.from_arrays([df["creative_id"].astype(str).to_numpy(), frame.to_numpy()])


def class_max_scores(images: pd.DataFrame, detections: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """(images × classes) highest detection score of each class on each image; 0 where there is none."""
    out = np.zeros((len(images), len(classes)), dtype=np.float64)
    if not len(images) or not len(detections) or not classes:
        return out
    dets = detections[detections["class_name"].isin(list(classes))]
    if not len(dets):
        return out
    keys = _image_keys(dets)
    long = pd.DataFrame(
        {
            "creative_id": keys.get_level_values(0),
            "frame": keys.get_level_values(1),
            "class_name": dets["class_name"].astype(str).to_numpy(),
            "score": dets["score"].to_numpy(dtype=np.float64),
        }
    )
    best = long.pivot_table(
        index=["creative_id", "frame"], columns="class_name", values="score", aggfunc="max"
    ).reindex(columns=list(classes))
    aligned = best.reindex(_image_keys(images))
    return np.nan_to_num(aligned.to_numpy(dtype=np.float64), nan=0.0)


def margin_uncertainty(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The tent `s / t` below the threshold, `(1 - s) / (1 - t)` at or above it: 1 at `t`, 0 at 0 and 1."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), s.shape)
    if np.any((t <= 0) | (t >= 1)):
        raise ValueError("thresholds must lie strictly between 0 and 1")
    s = np.clip(s, 0.0, 1.0)
    return np.where(s < t, s / t, (1.0 - s) / (1.0 - t))


def temporal_disagreement(images: pd.DataFrame, present: np.ndarray, stride: int) -> np.ndarray:
    """Per image: the largest over classes of the share of its ±`stride` frames whose presence differs."""
    if stride <= 0:
        raise ValueError("stride must be positive")
    present = np.asarray(present, dtype=bool).reshape(len(images), -1)
    out = np.zeros(len(images), dtype=np.float64)
    is_frame = images["frame_index"].notna().to_numpy()
    if not is_frame.any() or present.shape[1] == 0:
        return out
    row_of = {
        (str(c), int(f)): i
        for i, (c, f) in enumerate(zip(images["creative_id"], images["frame_index"], strict=True))
        if f is not pd.NA and not pd.isna(f)
    }
    for (creative, frame), i in row_of.items():
        neighbours = [
            row_of[k] for k in ((creative, frame - stride), (creative, frame + stride)) if k in row_of
        ]
        if neighbours:
            differs = present[neighbours] != present[i]  # (neighbours × classes)
            out[i] = float(differs.mean(axis=0).max())
    return out


def impression_weights(
    impressions: pd.DataFrame | None, creative_ids: Sequence[str]
) -> tuple[pd.Series, str]:
    """Each creative's share of the brand's impressions, and how it was decided (for metadata).

    `impressions` holds the brand's rows only (date, creative_id, impressions, …). Without rows, or with no
    impressions at all, every creative weighs the same.
    """
    ids = pd.Index([str(c) for c in creative_ids], dtype="object").unique()
    if impressions is None or impressions.empty or float(impressions["impressions"].sum()) <= 0:
        uniform = 1.0 / len(ids) if len(ids) else 0.0
        return pd.Series(uniform, index=ids, dtype="float64"), "uniform: no impressions for the brand"
    totals = impressions.groupby(impressions["creative_id"].astype(str))["impressions"].sum()
    share = totals / float(totals.sum())
    return share.reindex(ids, fill_value=0.0).astype("float64"), "share of the brand's impressions"


def score_images(
    images: pd.DataFrame,
    detections: pd.DataFrame,
    thresholds: Mapping[str, float],
    stride: int,
    weights: pd.Series,
) -> pd.DataFrame:
    """`images` with score, uncertainty, weight and priority columns (see the module docstring)."""
    classes = list(thresholds)
    t = np.array([thresholds[c] for c in classes], dtype=np.float64)
    scores = class_max_scores(images, detections, classes)
    margins = margin_uncertainty(scores, t) if classes else np.zeros((len(images), 0))
    disagreement = temporal_disagreement(images, scores >= t, stride)
    out = images.reset_index(drop=True).copy()
    if classes and len(images):
        top = margins.argmax(axis=1)
        rows = np.arange(len(images))
        out["margin_uncertainty"] = margins[rows, top]
        out["top_class"] = pd.array([classes[k] for k in top], dtype="string")
        out["top_score"] = scores[rows, top]
        out["threshold"] = t[top]
    else:
        out["margin_uncertainty"] = 0.0
        out["top_class"] = pd.array([pd.NA] * len(images), dtype="string")
        out["top_score"] = 0.0
        out["threshold"] = np.nan
    out["temporal_disagreement"] = disagreement
    out["uncertainty"] = np.maximum(out["margin_uncertainty"].to_numpy(), disagreement)
    out["impression_weight"] = (
        weights.reindex(out["creative_id"].astype(str).to_numpy(), fill_value=0.0).to_numpy(dtype=np.float64)
        if len(out)
        else np.zeros(0)
    )
    out["priority"] = out["uncertainty"] * out["impression_weight"]
    return out


def select_queue(
    scored: pd.DataFrame,
    labelled: Collection[str],
    size: int,
    max_frames_per_video: int,
    stride: int,
) -> pd.DataFrame:
    """The unlabelled rows of `scored` chosen for one round (module docstring: rules and order), with `rank`."""
    if size <= 0 or max_frames_per_video <= 0:
        raise ValueError("size and max_frames_per_video must be positive")
    pool = scored[~scored["image_path"].astype(str).isin(set(map(str, labelled)))].reset_index(drop=True)
    creative = pool["creative_id"].astype(str).to_numpy()
    frame = frame_keys(pool["frame_index"]).to_numpy()
    priority = pool["priority"].to_numpy(dtype=np.float64)
    uncertainty = pool["uncertainty"].to_numpy(dtype=np.float64)

    def key(i: int, taken: int) -> tuple:
        return (-priority[i] / (1 + taken), -uncertainty[i] / (1 + taken), creative[i], frame[i])

    heap = [(*key(i, 0), 0, i) for i in range(len(pool))]
    heapq.heapify(heap)
    taken: dict[str, list[int]] = {}
    picks: list[int] = []
    while heap and len(picks) < size:
        *_, seen, i = heapq.heappop(heap)
        chosen = taken.get(creative[i], [])
        if frame[i] != NO_FRAME:
            if len(chosen) >= max_frames_per_video or any(abs(frame[i] - f) <= stride for f in chosen):
                continue
        if seen != len(chosen):  # the video gave a frame since this key was computed: compare again
            heapq.heappush(heap, (*key(i, len(chosen)), len(chosen), i))
            continue
        taken.setdefault(creative[i], []).append(int(frame[i]))
        picks.append(i)

    first_pick: dict[str, int] = {}
    for order, i in enumerate(picks):
        first_pick.setdefault(creative[i], order)
    ordered = sorted(picks, key=lambda i: (first_pick[creative[i]], frame[i]))
    out = pool.iloc[ordered].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1, dtype=np.int64))
    return out


def labelling_queue(
    brand: str,
    object_name: str,
    images: pd.DataFrame,
    detections: pd.DataFrame,
    thresholds: Mapping[str, float],
    labelled: Collection[str],
    weights: pd.Series,
    *,
    size: int,
    max_frames_per_video: int,
    stride: int,
    model_id: str | None,
) -> pd.DataFrame:
    """The ranked queue of one brand × object (LABELLING_QUEUE); empty when the object has no thresholds.

    `detections` are the brand's detections of this object's model; `labelled` the image paths of the
    brand's labels table.
    """
    if not thresholds or not len(images):
        return LABELLING_QUEUE.empty()
    scored = score_images(images, detections, thresholds, stride, weights)
    queue = select_queue(scored, labelled, size, max_frames_per_video, stride)
    queue["brand"] = brand
    queue["object"] = object_name
    queue["model_id"] = model_id
    return LABELLING_QUEUE.conform(queue)
