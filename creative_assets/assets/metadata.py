"""Materialisation metadata shared by the assets: previews, images, errors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from creative_assets.layout import DataRoot
from creative_assets.tables.warehouse import write_part


def markdown_table(df: pd.DataFrame, limit: int = 10) -> str:
    """A markdown table of the first `limit` rows (no extra dependency)."""
    if df.empty:
        return "_(no rows)_"
    head = df.head(limit)
    cols = [str(c) for c in head.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f"{v:.4g}")
            else:
                cells.append(str(v).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    if len(df) > limit:
        lines.append(f"\n_{len(df) - limit} more rows_")
    return "\n".join(lines)


def preview(df: pd.DataFrame, limit: int = 10) -> dg.MetadataValue:
    """A markdown preview of a table."""
    return dg.MetadataValue.md(markdown_table(df, limit))


def write_errors(
    root: DataRoot, table: str, brand: str, errors: pd.DataFrame, object_name: str | None = None
) -> Path:
    """Store an errors table beside the asset's (always written, so an empty table means no errors)."""
    target = root.warehouse(table, brand, object_name) / "part-00000.parquet"
    write_part(target, errors.reset_index(drop=True))
    return target


def error_metadata(errors: pd.DataFrame, path: Path) -> dict[str, Any]:
    """Error count, where the full table is, and the first rows."""
    meta: dict[str, Any] = {"errors": len(errors), "errors_path": dg.MetadataValue.path(str(path))}
    if len(errors):
        meta["errors_preview"] = preview(errors)
    return meta


def table_version(table: pd.DataFrame) -> dg.DataVersion:
    """A data version from a table's content (columns and rows, not its index).

    Given to Dagster with an output, so re-reading unchanged inputs (the same labels after a new creative)
    does not mark what reads the table stale, while a changed row does.
    """
    digest = hashlib.sha256("\0".join(map(str, table.columns)).encode())
    digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return dg.DataVersion(digest.hexdigest()[:24])
