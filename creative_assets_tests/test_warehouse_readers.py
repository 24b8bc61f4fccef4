"""Every folder under warehouse/ of the smoke pipeline reads as one Hive-partitioned dataset in pandas, pyarrow,
DuckDB (without union_by_name) and polars, and the four agree on rows and brands."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from creative_assets.layout import DataRoot

try:
    import polars
except ImportError:  # not every environment has it; the other three readers still run
    polars = None


@pytest.fixture(scope="module")
def warehouse(smoke_pipeline) -> Path:
    return DataRoot(smoke_pipeline.root).root / "warehouse"


def tables(warehouse: Path) -> list[Path]:
    return sorted(p for p in warehouse.iterdir() if p.is_dir())


def test_warehouse_holds_parquet_only_and_no_empty_partition_folder(warehouse: Path) -> None:
    # Hidden files (a writer's `.lock`) are skipped by every reader, as Hive tools do.
    files = [p for p in warehouse.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    assert files and all(p.suffix == ".parquet" for p in files), [p for p in files if p.suffix != ".parquet"]
    leaves = [
        p for p in warehouse.rglob("brand=*") if p.is_dir() and not any(c.is_dir() for c in p.iterdir())
    ]
    assert all(any(p.glob("*.parquet")) for p in leaves), [p for p in leaves if not any(p.glob("*.parquet"))]
    # The tables the issue named: detection errors of a brand without errors, and the COCO split tables.
    assert {"coco_datasets", "detection_errors", "detections"} <= {p.name for p in tables(warehouse)}


def read_all(folder: Path) -> dict[str, tuple[int, set[str]]]:
    """rows and brands of one table, per reader."""
    out = {}
    frame = pd.read_parquet(folder)
    out["pandas"] = (len(frame), set(frame["brand"].astype(str)))
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    out["pyarrow"] = (table.num_rows, {str(b) for b in table.column("brand").to_pylist()})
    glob = f"{folder.as_posix()}/**/*.parquet"
    con = duckdb.connect()
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()[0]
    brands = con.execute(
        f"SELECT DISTINCT brand FROM read_parquet('{glob}', hive_partitioning = true)"
    ).fetchall()
    out["duckdb"] = (rows, {str(b[0]) for b in brands})
    if polars is None:
        return out
    frame_pl = polars.read_parquet(glob, hive_partitioning=True)
    out["polars"] = (frame_pl.height, {str(b) for b in frame_pl["brand"].to_list()})
    return out


def test_every_table_reads_the_same_in_four_readers(warehouse: Path) -> None:
    brands = {p.name.removeprefix("brand=") for p in warehouse.glob("*/brand=*")}
    for folder in tables(warehouse):
        results = read_all(folder)
        on_disk = {p.name.removeprefix("brand=") for p in folder.glob("brand=*")}
        (rows, seen), *others = results.values()
        assert all(other == (rows, seen) for other in others), (folder.name, results)
        # Every partition's brand shows up, unless that partition holds zero rows.
        assert seen <= on_disk <= brands, (folder.name, results)


@pytest.mark.skipif(polars is None, reason="polars is not installed in this environment")
def test_polars_reads_every_table(warehouse: Path) -> None:
    for folder in tables(warehouse):
        assert "polars" in read_all(folder)
