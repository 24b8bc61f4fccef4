"""Read and write Hive-partitioned warehouse tables: folders of committed `part-*.parquet` files.

Writers commit parts atomically (`creative_assets.atomic`), so a folder only ever holds whole parts plus,
after a kill, hidden `.*.tmp` temporaries, which the `part-*` pattern never matches.

Partition columns (`brand`, `object`) live in the folder names (`brand=acme/object=logo`), not in the files:
pyarrow, pandas, DuckDB and Spark add them back from the path, and they refuse a column that is in both.
`read_table` adds them back too, so one partition read alone still has its `brand` column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (registers pa.compute)
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from creative_assets.atomic import atomic_write_parquet
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


def hive_values(folder: Path) -> dict[str, str]:
    """The partition values a folder's path names: `…/brand=acme/object=logo` → {brand: acme, object: logo}."""
    out: dict[str, str] = {}
    for part in Path(folder).parts:
        key, sep, value = part.partition("=")
        if sep and key and value:
            out[key] = value
    return out


def write_part(target: Path, table: pd.DataFrame | pa.Table) -> None:
    """Commit one part atomically, leaving out the partition columns its folder already names.

    A partition column whose values disagree with the folder is an error, never silently dropped.
    """
    values = hive_values(Path(target).parent)
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    for key, value in values.items():
        if key not in table.column_names:
            continue
        wrong = {v for v in table.column(key).unique().to_pylist() if v != value}
        if wrong:
            raise ValueError(
                f"{target}: column {key!r} holds {sorted(map(str, wrong))[:3]}, the folder says {value!r}"
            )
        table = table.drop_columns([key])
    atomic_write_parquet(target, table)


EMPTY_PART_KEY = "empty"


def ensure_schema_part(folder: Path, schema: pa.Schema) -> None:
    """Keep a table readable when it has no rows: a folder without parts gets `part-empty.parquet`, zero rows
    with `schema` (less the partition columns its path names); once another part exists it is removed."""
    folder = Path(folder)
    empty = part_path(folder, EMPTY_PART_KEY)
    others = [p for p in part_files(folder) if p != empty]
    if others:
        empty.unlink(missing_ok=True)
    elif not empty.is_file():
        write_part(empty, schema.empty_table())


def _with_partition_columns(df: pd.DataFrame, folder: Path) -> pd.DataFrame:
    for i, (key, value) in enumerate(hive_values(folder).items()):
        if key not in df.columns:
            df.insert(
                min(i, len(df.columns)), key, pd.Series([value] * len(df), dtype="string", index=df.index)
            )
    return df


def read_table(folder: Path, schema: TableSchema | None = None) -> pd.DataFrame:
    """Every part in `folder` as one DataFrame, partition columns included; with `schema`, its columns and
    dtypes even when empty."""
    files = part_files(folder)
    if not files:
        return schema.empty() if schema is not None else pd.DataFrame()
    file_schema = None
    if schema is not None:
        in_path = set(hive_values(folder))
        full = schema.arrow_schema()
        file_schema = pa.schema([f for f in full if f.name not in in_path])
    df = ds.dataset([str(p) for p in files], format="parquet", schema=file_schema).to_table().to_pandas()
    df = _with_partition_columns(df, folder)
    return schema.conform(df) if schema is not None else df


def count_true(folder: Path, column: str) -> int:
    """How many rows of the table in `folder` have `column` true, reading that one column only."""
    files = part_files(folder)
    if not files:
        return 0
    values = ds.dataset([str(p) for p in files], format="parquet").to_table(columns=[column]).column(column)
    return int(pa.compute.sum(values).as_py() or 0)


def read_head(folder: Path, rows: int) -> pd.DataFrame:
    """At least `rows` rows (fewer if the table is smaller) from the first parts, partition columns included:
    a preview that does not load the whole table."""
    frames, seen = [], 0
    for path in part_files(folder):
        if seen >= rows:
            break
        df = pq.read_table(path).to_pandas()
        frames.append(df)
        seen += len(df)
    if not frames:
        return pd.DataFrame()
    return _with_partition_columns(pd.concat(frames, ignore_index=True), folder)


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
