"""Read a Hive-partitioned warehouse table: one folder of committed `part-*.parquet` files.

Writers commit parts atomically (`creative_assets.atomic`), so a folder only ever holds whole parts plus,
after a kill, hidden `.*.tmp` temporaries, which the `part-*` pattern never matches.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from creative_assets.tables.schemas import DETECTION_ERRORS, DETECTIONS, TableSchema

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"


def part_path(folder: Path, key: str) -> Path:
    """Where the part with `key` is committed: `<folder>/part-<key>.parquet`."""
    return Path(folder) / f"{PART_PREFIX}{key}{PART_SUFFIX}"


def part_key(path: Path) -> str:
    """The key of a part file (`part-<key>.parquet` → `<key>`)."""
    return Path(path).name[len(PART_PREFIX) : -len(PART_SUFFIX)]


def part_files(folder: Path) -> list[Path]:
    """The committed parts in `folder`, sorted by name; [] when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{PART_PREFIX}*{PART_SUFFIX}") if p.is_file())


def count_rows(folder: Path) -> int:
    """Rows in all parts of `folder`, from the Parquet footers (no data is read)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in part_files(folder))


def read_table(folder: Path, schema: TableSchema | None = None) -> pd.DataFrame:
    """Every part in `folder` as one DataFrame; with `schema`, its columns and dtypes even when empty."""
    files = part_files(folder)
    if not files:
        return schema.empty() if schema is not None else pd.DataFrame()
    dataset = ds.dataset(
        [str(p) for p in files],
        format="parquet",
        schema=schema.arrow_schema() if schema is not None else None,
    )
    df = dataset.to_table().to_pandas()
    return schema.conform(df) if schema is not None else df


def read_detections(folder: Path) -> pd.DataFrame:
    """The detections table of one brand partition, ordered by creative, frame and object."""
    df = read_table(folder, DETECTIONS)
    # mergesort keeps each image's detections in the detector's order (highest score first).
    order = df.sort_values(
        ["creative_id", "frame_index", "object", "class_name"], kind="mergesort", na_position="first"
    ).index
    return df.loc[order].reset_index(drop=True)


def read_detection_errors(folder: Path) -> pd.DataFrame:
    """The detection errors of one brand partition (brand, file, record, stage, reason)."""
    df = read_table(folder, DETECTION_ERRORS)
    return df.sort_values(["file", "record"], kind="mergesort").reset_index(drop=True)
