"""The plan of a detection run: the work items, the batches they are cut into and each batch's key.

Every executor (`batch_detect.run_detection`, `execution.ray_detect.run_detection_ray`) plans with these
functions, so a batch has the same key whichever executor computes it and a part one committed is reused by
the other.

Batch assignment. Creatives are taken in creative_id order; a batch ends after a creative whose id hashes to
0 modulo `batch_size`, or when it holds 2 × `batch_size` creatives. Boundaries depend on the ids themselves,
not on positions, so a new creative changes the key of the one batch it falls into (or splits that batch in
two when the new id is itself a boundary) and a removed creative changes one batch (or merges two); every
other batch keeps its key and its part is reused. Fixed-size chunks of the sorted ids would instead shift every
batch after the insertion point. Batches hold about 0.86 × `batch_size` creatives on average (geometric sizes
cut at the cap); changing `batch_size` regroups everything.

Batch key: sha256 over the model fingerprint (format version, score floor, and per model its object, model_id,
backend, classes, thresholds and any inference options such as tiling) and, per creative of the batch, its id, its content sha256 and the extracted
frame indices. A changed model or threshold recomputes every batch; a changed creative only its own.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Bump when the rows a batch produces change meaning or columns: every batch is then recomputed.
DETECTION_FORMAT_VERSION = "2"  # 2: model_beats_baseline

WORK_ITEM_DTYPES = {
    "brand": "string",
    "creative_id": "string",
    "media_type": "string",
    "frame_index": "Int64",
    "timestamp_s": "Float64",
    "path": "string",
    "sha256": "string",
}
WORK_ITEM_COLUMNS = list(WORK_ITEM_DTYPES)


@dataclass(frozen=True)
class ModelDescriptor:
    """What the detections table depends on of a model, as plain data (no weights): what plans, fingerprints
    and checks read, and what an executor ships to its workers in place of a live detector."""

    object_name: str
    model_id: str
    backend: str
    classes: tuple[str, ...]
    thresholds: Mapping[str, float]
    # how the detector is run beyond its weights (e.g. tiled inference); empty for a plain forward pass
    inference: Mapping[str, Any] = field(default_factory=dict)
    beats_baseline: bool = True  # chosen_model's test-split verdict; fakes and benchmarks have no baseline


@dataclass(frozen=True)
class Batch:
    """A run of whole creatives: rows `start:stop` of the sorted work items."""

    key: str
    start: int
    stop: int
    creative_ids: tuple[str, ...]

    @property
    def images(self) -> int:
        """Still images plus video frames in the batch."""
        return self.stop - self.start


def work_items(manifest: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """One row per image to run: still images and every extracted frame, sorted by (creative_id, frame_index)."""
    stills = manifest[manifest["media_type"] == "image"]
    still_rows = pd.DataFrame(
        {
            "brand": stills["brand"].to_numpy(),
            "creative_id": stills["creative_id"].to_numpy(),
            "media_type": "image",
            "frame_index": pd.array([pd.NA] * len(stills), dtype="Int64"),
            "timestamp_s": pd.array([pd.NA] * len(stills), dtype="Float64"),
            "path": stills["path"].to_numpy(),
            "sha256": stills["sha256"].to_numpy(),
        }
    ).astype(WORK_ITEM_DTYPES)

    videos = manifest.loc[manifest["media_type"] == "video", ["brand", "creative_id", "sha256"]]
    frame_rows = frames[["brand", "creative_id", "frame_index", "timestamp_s", "path"]].merge(
        videos, on=["brand", "creative_id"], how="left", indicator=True
    )
    orphans = frame_rows.loc[frame_rows["_merge"] != "both", "creative_id"].drop_duplicates()
    if len(orphans):
        listed = ", ".join(map(str, orphans.head(5)))
        raise ValueError(
            f"frames of {len(orphans)} creative(s) that are not videos of the manifest (e.g. {listed}); "
            "rebuild the frames table from the current manifest"
        )
    frame_rows = frame_rows.drop(columns="_merge").assign(media_type="video")[WORK_ITEM_COLUMNS]
    frame_rows = frame_rows.astype(WORK_ITEM_DTYPES)

    parts = [p for p in (still_rows, frame_rows) if len(p)]
    out = pd.concat(parts, ignore_index=True) if parts else still_rows
    return sorted_items(out)


def sorted_items(items: pd.DataFrame) -> pd.DataFrame:
    """Work items in creative and frame order (the order batches are planned and detected in)."""
    missing = [c for c in WORK_ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise KeyError(f"work items lack column(s) {', '.join(missing)}")
    out = items[WORK_ITEM_COLUMNS].astype(WORK_ITEM_DTYPES)
    out = out.sort_values(["creative_id", "frame_index"], na_position="first", kind="mergesort")
    return out.reset_index(drop=True)


def ends_batch(creative_id: str, batch_size: int) -> bool:
    """Whether `creative_id` closes its batch: its id hash is 0 modulo `batch_size` (probability 1/size)."""
    digest = hashlib.sha256(creative_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % batch_size == 0


def model_fingerprint(models: Sequence[ModelDescriptor], score_floor: float) -> str:
    """Everything about the models that changes the detections table, as one stable string."""
    lines = [f"format={DETECTION_FORMAT_VERSION}", f"score_floor={float(score_floor)!r}"]
    for m in sorted(models, key=lambda m: (m.object_name, m.model_id)):
        described: dict[str, Any] = {
            "object": m.object_name,
            "model_id": m.model_id,
            "backend": m.backend,
            "classes": list(m.classes),
            "thresholds": {k: float(v) for k, v in m.thresholds.items()},
            "beats_baseline": bool(m.beats_baseline),
        }
        if m.inference:  # only when set, so plain models keep the batch keys they always had
            described["inference"] = dict(m.inference)
        lines.append(json.dumps(described, sort_keys=True))
    return "\n".join(lines)


def plan_batches(items: pd.DataFrame, batch_size: int, fingerprint: str) -> list[Batch]:
    """Cut sorted work items into batches of whole creatives and key each batch (see the module docstring)."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not items["creative_id"].is_monotonic_increasing:
        raise ValueError("work items must be sorted by creative_id (use work_items)")
    n = len(items)
    if n == 0:
        return []
    ids = items["creative_id"].to_numpy(dtype=object)
    starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
    stops = np.concatenate([starts[1:], [n]])
    shas = items["sha256"].to_numpy(dtype=object)
    frames = items["frame_index"].fillna(-1).to_numpy(dtype=np.int64)  # -1: a still image

    def key_of(first: int, last: int) -> str:
        digest = hashlib.sha256(fingerprint.encode("utf-8"))
        for s, e in zip(starts[first : last + 1], stops[first : last + 1], strict=True):
            indices = ",".join(map(str, frames[s:e].tolist()))
            digest.update(f"\n{ids[s]}\t{shas[s]}\t{indices}".encode())
        return digest.hexdigest()[:24]

    batches: list[Batch] = []
    first = 0
    cap = 2 * batch_size
    for c in range(len(starts)):
        if ends_batch(ids[starts[c]], batch_size) or c - first + 1 >= cap or c == len(starts) - 1:
            batches.append(
                Batch(
                    key=key_of(first, c),
                    start=int(starts[first]),
                    stop=int(stops[c]),
                    creative_ids=tuple(ids[starts[first : c + 1]]),
                )
            )
            first = c + 1
    return batches


def check_models(models: Sequence[ModelDescriptor]) -> None:
    """Refuse models that would give ambiguous rows: a missing class threshold or one object twice."""
    names = [m.object_name for m in models]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"one model per object, but several for {', '.join(duplicated)}")
    for m in models:
        missing = [c for c in m.classes if c not in m.thresholds]
        if missing:
            raise ValueError(
                f"model {m.object_name}/{m.model_id} has no threshold for class(es) {', '.join(missing)}"
            )
