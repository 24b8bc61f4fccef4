"""Resumable, batched, crash-safe detection over every still image and extracted video frame of a brand.

Work is cut into batches of creatives (a video's frames stay with their video). Each finished batch is committed
atomically as one Parquet part, `<out_dir>/part-<batch key>.parquet`, so a killed run resumes where it stopped
with nothing lost or duplicated: a batch whose part exists is skipped, and parts that no longer belong to the
current batch set (old model versions, removed or changed creatives) are deleted once every current batch is
committed.

Batch assignment. Creatives are taken in creative_id order; a batch ends after a creative whose id hashes to
0 modulo `batch_size`, or when it holds 2 × `batch_size` creatives. Boundaries depend on the ids themselves,
not on positions, so a new creative changes the key of the one batch it falls into (or splits that batch in
two when the new id is itself a boundary) and a removed creative changes one batch (or merges two); every
other batch keeps its key and its part is reused. Fixed-size chunks of the sorted ids would instead shift every
batch after the insertion point. Batches hold about 0.86 × `batch_size` creatives on average (geometric sizes
cut at the cap); changing `batch_size` regroups everything.

Batch key: sha256 over the model fingerprint (format version, score floor, and per model its object, model_id,
backend, classes and thresholds) and, per creative of the batch, its id, its content sha256 and the extracted
frame indices. A changed model or threshold recomputes every batch; a changed creative only its own.

Stale parts and absence. A caller that reads the manifest passes `removed`, the creatives the manifest says
were removed (`media.removals`). A stale part is then deleted only when each creative it holds rows of is
either in the current work items (recomputed in a current part) or removed; rows of any other creative — one
the manifest could not see this time, or whose removal is not confirmed — are kept, rewritten into the same
part without the rows of recomputed creatives, so nothing is lost and nothing is counted twice. With
`removed=None` (plain calls, tests) every creative absent from the work items counts as removed.

Errors. An image or frame that cannot be read is a row (brand, file, record, stage, reason) of the errors part
with the same key in a sibling folder, `warehouse/detection_errors/brand=<b>/part-<key>.parquet` (derived from
`out_dir`; a separate folder keeps `detections/*/*.parquet` globs to one schema). The errors part is written
before the detections part, which is the batch's commit marker. A batch with a bad image still commits its
good images; the bad file is not retried until its content (sha256) changes.

Each image is decoded once for all models, ahead of the models by a DataLoader; the models see chunks of
`images_per_forward` images. Memory holds the decode-ahead chunks and the rows of one batch, never more, so
it does not grow with the number of creatives.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creative_assets.atomic import atomic_write_parquet, remove_stale_temporaries
from creative_assets.detection.backend import Detector, Predictions
from creative_assets.detection.failure_policy import DEFAULT_MAX_RETRIES, check_retries, reason_of
from creative_assets.detection.image_loader import DecodedImage, ImageFiles, image_chunks
from creative_assets.layout import DataRoot
from creative_assets.media.decode import DEFAULT_MAX_MEGAPIXELS
from creative_assets.settings import validate_brand
from creative_assets.tables.schemas import DETECTION_ERRORS, DETECTIONS
from creative_assets.tables.warehouse import (
    count_rows,
    ensure_schema_part,
    part_files,
    part_key,
    part_path,
    read_detection_errors,
    write_part,
)

# Bump when the rows a batch produces change meaning or columns: every batch is then recomputed.
DETECTION_FORMAT_VERSION = "1"
ERROR_STAGE = "detections"
# a whole batch that failed after its retries (the failure policy); the next run tries it again
BATCH_FAILURE_STAGE = "detection batch"
ERRORS_ASSET = "detection_errors"

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
class LoadedModel:
    """One object's chosen model, ready to run: its detector and per-class score thresholds."""

    object_name: str
    model_id: str
    detector: Detector
    thresholds: dict[str, float]

    def describe(self) -> ModelDescriptor:
        """This model as plain data."""
        return ModelDescriptor(
            self.object_name,
            self.model_id,
            self.detector.backend,
            tuple(self.detector.classes),
            self.thresholds,
        )


@dataclass(frozen=True)
class ModelDescriptor:
    """What the detections table depends on of a model, as plain data (no weights): what plans, fingerprints
    and checks read, and what an executor ships to its workers in place of a live detector."""

    object_name: str
    model_id: str
    backend: str
    classes: tuple[str, ...]
    thresholds: Mapping[str, float]


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


@dataclass
class DetectionRun:
    """What one call of `run_detection` did."""

    batches: int
    parts_written: int
    parts_reused: int
    parts_removed: int
    temporaries_removed: int
    parts_kept_unseen: int  # stale parts kept for rows of creatives not seen but not removed
    rows: int  # detections in the brand's table after the run
    rows_written: int  # detections in the parts written by this run
    errors: pd.DataFrame  # every error of the current batch set, reused batches included
    images: int  # images decoded by this run
    seconds: float
    images_per_s: float


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
        lines.append(
            json.dumps(
                {
                    "object": m.object_name,
                    "model_id": m.model_id,
                    "backend": m.backend,
                    "classes": list(m.classes),
                    "thresholds": {k: float(v) for k, v in m.thresholds.items()},
                },
                sort_keys=True,
            )
        )
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


def errors_folder(out_dir: Path) -> Path:
    """The errors folder beside a detections partition: `…/detections/brand=b` → `…/detection_errors/brand=b`."""
    out_dir = Path(out_dir)
    return out_dir.parent.parent / ERRORS_ASSET / out_dir.name


class BatchRows:
    """Detections of one batch, kept as column arrays until the batch is committed."""

    def __init__(self, models: Sequence[LoadedModel], score_floor: float) -> None:
        self.models = models
        self.score_floor = score_floor
        self.n_classes = [len(m.detector.classes) for m in models]
        offsets = np.cumsum([0, *self.n_classes])
        self.offsets = offsets[:-1]
        self.classes = np.array([c for m in models for c in m.detector.classes], dtype=object)
        self.thresholds = np.array([float(m.thresholds[c]) for m in models for c in m.detector.classes])
        self.positions: list[np.ndarray] = []
        self.model_index: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.area: list[np.ndarray] = []

    def add(self, image: DecodedImage, model_index: int, pred: Predictions) -> None:
        scores = np.asarray(pred.scores, dtype=np.float64).reshape(-1)
        keep = scores >= self.score_floor
        if not keep.any():
            return
        boxes = np.asarray(pred.boxes, dtype=np.float64).reshape(-1, 4)[keep]
        if image.scale_x != 1.0 or image.scale_y != 1.0:
            # decoded reduced (over the pixel budget): report boxes in full-size pixels
            boxes = boxes * np.array([image.scale_x, image.scale_y, image.scale_x, image.scale_y])
        labels = np.asarray(pred.labels, dtype=np.int64).reshape(-1)[keep]
        if labels.min() < 0 or labels.max() >= self.n_classes[model_index]:
            model = self.models[model_index]
            raise ValueError(
                f"model {model.object_name}/{model.model_id} returned label {int(labels.max())} "
                f"outside its {self.n_classes[model_index]} classes"
            )
        height, width = image.image.shape[:2]  # type: ignore[union-attr]
        height, width = height * image.scale_y, width * image.scale_x  # full-size, like the boxes
        box_area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
        k = len(labels)
        self.positions.append(np.full(k, image.position, dtype=np.int64))
        self.model_index.append(np.full(k, model_index, dtype=np.int64))
        self.labels.append(labels)
        self.scores.append(scores[keep])
        self.boxes.append(boxes)
        self.area.append(box_area / float(width * height))

    def frame(self, items: pd.DataFrame, batch_key: str) -> pd.DataFrame:
        if not self.positions:
            return DETECTIONS.empty()
        positions = np.concatenate(self.positions)
        model_index = np.concatenate(self.model_index)
        flat = self.offsets[model_index] + np.concatenate(self.labels)
        scores = np.concatenate(self.scores)
        boxes = np.concatenate(self.boxes)
        meta = items.iloc[positions].reset_index(drop=True)
        thresholds = self.thresholds[flat]
        df = pd.DataFrame(
            {
                "brand": meta["brand"],
                "creative_id": meta["creative_id"],
                "media_type": meta["media_type"],
                "frame_index": meta["frame_index"],
                "timestamp_s": meta["timestamp_s"],
                "object": np.array([m.object_name for m in self.models], dtype=object)[model_index],
                "class_name": self.classes[flat],
                "score": scores,
                "x_min": boxes[:, 0],
                "y_min": boxes[:, 1],
                "x_max": boxes[:, 2],
                "y_max": boxes[:, 3],
                "box_area_frac": np.concatenate(self.area),
                "above_threshold": scores >= thresholds,
                "threshold": thresholds,
                "model_id": np.array([m.model_id for m in self.models], dtype=object)[model_index],
                "backend": np.array([m.detector.backend for m in self.models], dtype=object)[model_index],
                "batch": batch_key,
            }
        )
        return DETECTIONS.conform(df)


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


def detect_chunk(
    chunk: list[DecodedImage],
    models: Sequence[LoadedModel],
    score_floor: float,
    rows: BatchRows,
    failed: list[DecodedImage],
) -> None:
    """Every model's predictions on one decoded chunk of images, added to `rows`."""
    good = [d for d in chunk if d.image is not None]
    failed.extend(d for d in chunk if d.image is None)
    if not good:
        return
    images = [d.image for d in good]
    for index, model in enumerate(models):
        predictions = model.detector.predict(images, score_floor=score_floor)
        if len(predictions) != len(images):
            raise RuntimeError(
                f"model {model.object_name}/{model.model_id} returned {len(predictions)} results "
                f"for {len(images)} images"
            )
        for decoded, pred in zip(good, predictions, strict=True):
            rows.add(decoded, index, pred)


def error_frame(failed: list[DecodedImage], items: pd.DataFrame, brand: str) -> pd.DataFrame:
    """Errors-table rows for images that could not be decoded."""
    paths = items["path"]
    rows = [
        {
            "brand": brand,
            "file": paths.iloc[d.position],
            "record": "",
            "stage": ERROR_STAGE,
            "reason": d.error or "unreadable",
        }
        for d in failed
    ]
    return DETECTION_ERRORS.conform(pd.DataFrame(rows, columns=DETECTION_ERRORS.columns))


def commit_batch(
    out_dir: Path, errors_dir: Path, key: str, detections: pd.DataFrame, errors: pd.DataFrame
) -> None:
    """Commit a batch: its errors part first, then the detections part that marks it done."""
    # Errors first: the detections part marks the batch as done, so it must be the last file written.
    errors_part = part_path(errors_dir, key)
    if len(errors):
        write_part(errors_part, to_arrow(errors, DETECTION_ERRORS.arrow_schema()))
    else:
        errors_part.unlink(missing_ok=True)
    write_part(part_path(out_dir, key), to_arrow(detections, DETECTIONS.arrow_schema()))


def commit_failed_batch(
    root: DataRoot, brand: str, out_dir: Path, errors_dir: Path, batch: Batch, reason: str
) -> None:
    """Save a batch that failed after its retries as its errors part only (no detections part, so the next
    run tries it again); one row naming the batch, its creatives and the reason."""
    first, last = batch.creative_ids[0], batch.creative_ids[-1]
    row = {
        "brand": brand,
        "file": root.display(part_path(out_dir, batch.key)),
        "record": batch.key,
        "stage": BATCH_FAILURE_STAGE,
        "reason": f"batch of {batch.images} images ({first} … {last}) failed: {reason}",
    }
    errors = DETECTION_ERRORS.conform(pd.DataFrame([row], columns=DETECTION_ERRORS.columns))
    atomic_write_parquet(part_path(errors_dir, batch.key), to_arrow(errors, DETECTION_ERRORS.arrow_schema()))


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A DataFrame as an Arrow table with the given schema."""
    return pa.Table.from_pandas(df, schema=schema, preserve_index=False)


def remove_stale_parts(folder: Path, keys: set[str]) -> int:
    """Delete committed parts whose keys are not in `keys`; returns how many."""
    removed = 0
    for p in part_files(folder):
        if part_key(p) not in keys:
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def retire_stale_parts(
    out_dir: Path, errors_dir: Path, keys: set[str], current: set[str], removed: Collection[str] | None
) -> tuple[int, int]:
    """Retire detections parts not in `keys` without losing rows of creatives that were not removed.

    Returns (parts deleted, parts kept with rows of creatives neither current nor removed).
    """
    if removed is None:
        deleted = remove_stale_parts(out_dir, keys)
        remove_stale_parts(errors_dir, keys)
        return deleted, 0
    removed = set(removed)
    deleted = kept = 0
    for part in part_files(out_dir):
        key = part_key(part)
        if key in keys:
            continue
        table = pq.read_table(part)
        ids = table.column("creative_id").to_pylist()
        keep = [cid not in current and cid not in removed for cid in ids]
        if any(keep):
            if not all(keep):
                write_part(part, table.filter(pa.array(keep)))
            kept += 1
        else:
            part.unlink(missing_ok=True)
            deleted += 1
        part_path(errors_dir, key).unlink(missing_ok=True)
    remove_stale_parts(errors_dir, keys | {part_key(p) for p in part_files(out_dir)})
    return deleted, kept


def format_duration(seconds: float) -> str:
    """Seconds as a short human duration (`1h02m`, `3m05s`, `12s`)."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass
class RunPlan:
    """What a detection run has to do: its folders, the batches, and which of them are not committed yet."""

    out_dir: Path
    errors_dir: Path
    temporaries: int  # left by a killed run, removed
    items: pd.DataFrame
    batches: list[Batch]
    pending: list[Batch]
    total: int  # images in all batches
    done: int  # images in committed batches
    removed: Collection[str] | None = None  # creatives the manifest says were removed (None: all absent)

    def summary(self, brand: str, models: int) -> str:
        """One log line describing the plan."""
        return (
            f"detections {brand}: {len(self.batches)} batches ({len(self.batches) - len(self.pending)} already "
            f"committed, {len(self.pending)} to run), {self.total} images, {models} models"
        )

    def finish(self, written: int, rows_written: int, images: int, started: float) -> DetectionRun:
        """Remove parts of batches no longer planned (only now, with every current batch committed)."""
        keys = {b.key for b in self.batches}
        current = set(self.items["creative_id"].astype(str))
        removed, kept = retire_stale_parts(self.out_dir, self.errors_dir, keys, current, self.removed)
        ensure_schema_part(self.errors_dir, DETECTION_ERRORS.arrow_schema())
        seconds = time.perf_counter() - started
        return DetectionRun(
            batches=len(self.batches),
            parts_written=written,
            parts_reused=len(self.batches) - len(self.pending),
            parts_removed=removed,
            parts_kept_unseen=kept,
            temporaries_removed=self.temporaries,
            rows=count_rows(self.out_dir),
            rows_written=rows_written,
            errors=read_detection_errors(self.errors_dir),
            images=images,
            seconds=seconds,
            images_per_s=images / seconds if seconds > 0 else 0.0,
        )


def plan_run(
    brand: str,
    items: pd.DataFrame,
    out_dir: Path,
    errors_dir: Path | None,
    batch_size: int,
    fingerprint: str,
    removed: Collection[str] | None = None,
) -> RunPlan:
    """Prepare the folders (clearing a killed run's temporaries) and plan the batches still to run."""
    out_dir = Path(out_dir).resolve()
    errors_dir = Path(errors_dir).resolve() if errors_dir is not None else errors_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    errors_dir.mkdir(parents=True, exist_ok=True)
    temporaries = remove_stale_temporaries(out_dir) + remove_stale_temporaries(errors_dir)
    items = sorted_items(items)
    other_brands = sorted(set(items["brand"].dropna()) - {brand})
    if other_brands:
        raise ValueError(f"work items of brand {brand!r} include other brands: {', '.join(other_brands)}")
    batches = plan_batches(items, batch_size, fingerprint)
    pending = [b for b in batches if not part_path(out_dir, b.key).is_file()]
    total = len(items)
    return RunPlan(
        out_dir,
        errors_dir,
        temporaries,
        items,
        batches,
        pending,
        total,
        total - sum(b.images for b in pending),
        removed,
    )


def run_detection(
    root: DataRoot,
    brand: str,
    items: pd.DataFrame,
    models: list[LoadedModel],
    out_dir: Path,
    *,
    batch_size: int,
    images_per_forward: int,
    score_floor: float,
    loader_workers: int,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    errors_dir: Path | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    removed: Collection[str] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> DetectionRun:
    """Run every model on every work item of `brand`, committing one Parquet part per batch (resumable).

    `removed`: the creatives the manifest says were removed; committed rows of other absent creatives are
    kept (see "Stale parts and absence" in the module docstring).
    """
    started = time.perf_counter()
    validate_brand(brand)
    if images_per_forward <= 0:
        raise ValueError(f"images_per_forward must be positive, got {images_per_forward}")
    check_retries(max_retries)
    described = [m.describe() for m in models]
    check_models(described)
    say = log or (lambda _message: None)
    plan = plan_run(
        brand, items, out_dir, errors_dir, batch_size, model_fingerprint(described, score_floor), removed
    )
    out_dir, errors_dir, items, pending = plan.out_dir, plan.errors_dir, plan.items, plan.pending
    total, done = plan.total, plan.done
    say(plan.summary(brand, len(models)))
    if progress is not None:
        progress(done, total)

    computed = 0
    committed = 0
    rows_written = 0
    compute_started = time.perf_counter()
    if pending:
        chunks = [
            [
                list(range(s, min(s + images_per_forward, b.stop)))
                for s in range(b.start, b.stop, images_per_forward)
            ]
            for b in pending
        ]
        dataset = ImageFiles(root, items["path"].tolist(), max_megapixels)
        decoded = iter(
            image_chunks(dataset, (c for batch_chunks in chunks for c in batch_chunks), loader_workers)
        )
        for number, (batch, batch_chunks) in enumerate(zip(pending, chunks, strict=True), start=1):
            # The failure policy of every executor: a batch that raises is tried again (decoded afresh, in
            # this process) up to max_retries times, then committed as an errors row; the others go on.
            ahead = (next(decoded) for _ in batch_chunks)
            first_done = done
            for attempt in range(1, max_retries + 2):
                try:
                    rows, failed = BatchRows(models, score_floor), []
                    for chunk in ahead:
                        detect_chunk(chunk, models, score_floor, rows, failed)
                        if attempt == 1 and progress is not None:
                            done += len(chunk)
                            progress(done, total)
                    detections = rows.frame(items, batch.key)
                    errors = error_frame(failed, items, brand)
                    commit_batch(out_dir, errors_dir, batch.key, detections, errors)
                    committed += 1
                    break
                except Exception as err:
                    for _ in ahead:  # the loader decoded this batch ahead: skip what is left of it
                        pass
                    reason = reason_of(err)
                    if attempt <= max_retries:
                        say(
                            f"detections {brand}: batch {number} attempt {attempt} failed ({reason}); retrying"
                        )
                        ahead = ([dataset[i] for i in positions] for positions in batch_chunks)
                        continue
                    say(f"detections {brand}: batch {number} failed after {attempt} attempts: {reason}")
                    commit_failed_batch(root, brand, out_dir, errors_dir, batch, reason)
                    detections = DETECTIONS.conform(pd.DataFrame(columns=DETECTIONS.columns))
                    errors = error_frame([], items, brand).head(0)
            done = first_done + batch.images
            computed += batch.images
            if progress is not None:
                progress(done, total)
            rows_written += len(detections)
            elapsed = time.perf_counter() - compute_started
            rate = computed / elapsed if elapsed > 0 else 0.0
            eta = format_duration((total - done) / rate) if rate > 0 else "?"
            say(
                f"detections {brand}: batch {number}/{len(pending)} committed ({batch.images} images, "
                f"{len(detections)} detections, {len(errors)} errors); {done}/{total} images, "
                f"{rate:.1f} images/s, ETA {eta}"
            )

    result = plan.finish(written=committed, rows_written=rows_written, images=computed, started=started)
    say(
        f"detections {brand}: done in {format_duration(result.seconds)}; {result.parts_written} parts written, "
        f"{result.parts_reused} reused, {result.parts_removed} stale removed, {result.parts_kept_unseen} kept "
        f"for creatives not seen but not removed; {result.rows} detections, "
        f"{len(result.errors)} errors"
    )
    return result
