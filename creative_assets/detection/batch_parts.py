"""How a detection batch is stored: one committed Parquet part per batch, errors beside it, stale parts retired.

A finished batch is committed atomically as one Parquet part, `<out_dir>/part-<batch key>.parquet`, so a killed
run resumes where it stopped with nothing lost or duplicated: a batch whose part exists is skipped, and parts
that no longer belong to the current batch set (old model versions, removed or changed creatives) are retired
once every current batch is committed.

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
good images; the bad file is not retried until its content (sha256) changes. A batch that fails as a whole
after its retries is one errors row (stage `detection batch`) with no detections part, so the next run tries
it again.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creative_assets.detection.batches import Batch
from creative_assets.detection.image_loader import DecodedImage
from creative_assets.layout import DataRoot
from creative_assets.tables.schemas import DETECTION_ERRORS, DETECTIONS
from creative_assets.tables.warehouse import part_files, part_key, part_path, write_part

ERROR_STAGE = "detections"
# a whole batch that failed after its retries (the failure policy); the next run tries it again
BATCH_FAILURE_STAGE = "detection batch"
ERRORS_ASSET = "detection_errors"


def errors_folder(out_dir: Path) -> Path:
    """The errors folder beside a detections partition: `…/detections/brand=b` → `…/detection_errors/brand=b`."""
    out_dir = Path(out_dir)
    return out_dir.parent.parent / ERRORS_ASSET / out_dir.name


def error_frame(failed: list[DecodedImage], items: pd.DataFrame, brand: str) -> pd.DataFrame:
    """Errors-table rows for images that could not be decoded."""
    if not failed:
        return DETECTION_ERRORS.empty()
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
    out_dir: Path, errors_dir: Path, key: str, detections: pa.Table, errors: pd.DataFrame
) -> None:
    """Commit a batch: its errors part first, then the detections part that marks it done."""
    # Errors first: the detections part marks the batch as done, so it must be the last file written.
    errors_part = part_path(errors_dir, key)
    if len(errors):
        write_part(errors_part, to_arrow(errors, DETECTION_ERRORS.arrow_schema()))
    else:
        errors_part.unlink(missing_ok=True)
    if not detections.schema.equals(DETECTIONS.arrow_schema()):
        raise ValueError(f"batch {key}: the detections part does not have the detections schema")
    write_part(part_path(out_dir, key), detections)


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
    write_part(part_path(errors_dir, batch.key), to_arrow(errors, DETECTION_ERRORS.arrow_schema()))


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
