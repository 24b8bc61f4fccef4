"""README's table reference against the files: every warehouse table documented column by column, and the
documented names and dtypes equal to what the smoke pipeline writes and to creative_assets/tables/schemas.py.

A table is documented in README.md by a marker line `<!-- table: name[, name…] -->` directly above a
`| column | dtype | meaning |` table. A column cell may name several columns (`x_min, y_min`) and use the
placeholders `<o>` (each object), `<channel>` (each channel of the impressions file, as a column name) and `<c>`
(each confidence in percent); a dtype cell may give alternatives (`int64/float64`); a meaning that starts with
"partition" marks a Hive partition column (in the folder names, not in the files).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from creative_assets.labels.queue import LABELLING_QUEUE
from creative_assets.tables.mmm import channel_column_name
from creative_assets.tables.schemas import (
    DETECTION_ERRORS,
    DETECTIONS,
    IMPRESSION_DTYPES,
    TableSchema,
    feature_schema,
    mmm_features_schema,
    mmm_panel_schema,
    unmatched_schema,
)

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r"<!-- table: (?P<names>[a-z0-9_, ]+) -->")
PLACEHOLDER = re.compile(r"<(o|channel|c)>")

# Documented tables the smoke pipeline does not write, with the reason; compared with their schema only.
NOT_IN_SMOKE = {"labelling_queue": "materialised on demand, not part of the demo graph"}


@dataclass(frozen=True)
class DocumentedColumn:
    """One row of a documented table: a column name (maybe with placeholders), its dtypes, whether partition."""

    name: str
    dtypes: frozenset[str]
    partition: bool


def documented_tables(text: str) -> dict[str, list[DocumentedColumn]]:
    """Every marked table of the README: table name → its documented columns, in order."""
    lines = text.splitlines()
    tables: dict[str, list[DocumentedColumn]] = {}
    for i, line in enumerate(lines):
        match = MARKER.fullmatch(line.strip())
        if not match:
            continue
        header = [c.strip() for c in lines[i + 1].strip().strip("|").split("|")]
        assert header == ["column", "dtype", "meaning"], f"README line {i + 2}: not a column table"
        columns = []
        for row in itertools.takewhile(lambda r: r.startswith("|"), lines[i + 3 :]):
            name_cell, dtype_cell, meaning = (c.strip() for c in row.strip().strip("|").split("|", 2))
            dtypes = frozenset(d.strip() for d in dtype_cell.replace("`", "").split("/"))
            for name in name_cell.replace("`", "").split(","):
                columns.append(DocumentedColumn(name.strip(), dtypes, meaning.startswith("partition")))
        for name in (n.strip() for n in match["names"].split(",")):
            assert name not in tables, f"{name} is documented twice"
            tables[name] = columns
    return tables


def expand(
    columns: Sequence[DocumentedColumn], values: dict[str, Sequence[str]]
) -> dict[str, DocumentedColumn]:
    """Concrete column name → its documentation, each placeholder replaced by every one of its values."""
    out: dict[str, DocumentedColumn] = {}
    for column in columns:
        keys = PLACEHOLDER.findall(column.name)
        for combination in itertools.product(*(values[k] for k in keys)):
            name = column.name
            for key, value in zip(keys, combination, strict=True):
                name = name.replace(f"<{key}>", str(value), 1)
            out[name] = column
    return out


DOCUMENTED = documented_tables(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def placeholders(smoke_pipeline) -> dict[str, list[str]]:
    """The values the placeholders take in the smoke pipeline's data."""
    impressions = pd.read_csv(smoke_pipeline.root / "raw" / "impressions.csv")
    return {
        "o": list(smoke_pipeline.settings.object_names),
        "channel": sorted({channel_column_name(c) for c in impressions["channel"]}),
        "c": [str(int(round(c * 100))) for c in smoke_pipeline.settings.confidences],
    }


def warehouse_tables(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "warehouse").iterdir() if p.is_dir())


def test_every_warehouse_table_is_documented(smoke_pipeline) -> None:
    written = set(warehouse_tables(smoke_pipeline.root))
    assert written - set(DOCUMENTED) == set(), "tables without a column reference in README.md"
    assert set(DOCUMENTED) - written == set(NOT_IN_SMOKE), (
        "documented tables the smoke pipeline does not write"
    )


@pytest.mark.parametrize("table", sorted(set(DOCUMENTED) - set(NOT_IN_SMOKE)))
def test_documented_columns_and_dtypes_are_the_files(table: str, smoke_pipeline, placeholders) -> None:
    folder = smoke_pipeline.root / "warehouse" / table
    df = pd.read_parquet(folder)
    documented = expand(DOCUMENTED[table], placeholders)
    hive_keys = {p.name.split("=", 1)[0] for p in folder.rglob("*=*") if p.is_dir()}
    assert {n for n, c in documented.items() if c.partition} == hive_keys
    in_files = {c: str(t) for c, t in df.dtypes.items() if c not in hive_keys}
    assert set(in_files) == {n for n, c in documented.items() if not c.partition}
    wrong = {
        c: (t, sorted(documented[c].dtypes)) for c, t in in_files.items() if t not in documented[c].dtypes
    }
    assert wrong == {}, "file dtype vs README dtype"


def _impressions_schemas(build: Callable[[str], TableSchema]) -> list[TableSchema]:
    return [build(d) for d in IMPRESSION_DTYPES]


def code_schemas(table: str, values: dict[str, list[str]]) -> list[TableSchema]:
    """The schema(s) the code defines for `table`: one per impressions dtype for the MMM tables."""
    objects, channels = values["o"], values["channel"]
    errors = ("creative_manifest_errors", "video_frames_errors", "labels_errors", "detection_errors")
    builders: dict[str, Callable[[], list[TableSchema]]] = {
        "detections": lambda: [DETECTIONS],
        "creative_features": lambda: [feature_schema(objects)],
        "mmm_features": lambda: _impressions_schemas(lambda d: mmm_features_schema(objects, True, d)),
        "mmm_panel": lambda: _impressions_schemas(lambda d: mmm_panel_schema(objects, channels, d)),
        "mmm_unmatched_creatives": lambda: _impressions_schemas(unmatched_schema),
        "labelling_queue": lambda: [LABELLING_QUEUE],
        **{e: (lambda: [DETECTION_ERRORS]) for e in errors},
    }
    return builders[table]() if table in builders else []


@pytest.mark.parametrize("table", sorted(DOCUMENTED))
def test_documented_columns_and_dtypes_are_the_code_schema(table: str, placeholders) -> None:
    schemas = code_schemas(table, placeholders)
    if not schemas:
        pytest.skip(f"{table} has no TableSchema in the code; its files are compared instead")
    documented = expand(DOCUMENTED[table], placeholders)
    assert set(documented) == set(schemas[0].columns)
    by_code = {c: frozenset(s.dtypes[c] for s in schemas) for c in schemas[0].columns}
    assert {c: d.dtypes for c, d in documented.items()} == by_code


def test_the_parser_reads_several_names_alternatives_and_placeholders() -> None:
    text = "\n".join(
        [
            "<!-- table: t -->",
            "| column | dtype | meaning |",
            "|---|---|---|",
            "| brand | string | partition |",
            "| x, y | float64 | a box |",
            "| `spend_<channel>_<o>` | int64/float64 | split spend |",
            "",
            "| not | part | of it |",
        ]
    )
    columns = documented_tables(text)["t"]
    concrete = expand(columns, {"o": ["logo"], "channel": ["tv", "web"], "c": []})
    assert list(concrete) == ["brand", "x", "y", "spend_tv_logo", "spend_web_logo"]
    assert concrete["brand"].partition and not concrete["x"].partition
    assert concrete["spend_web_logo"].dtypes == {"int64", "float64"}


def marked_table(text: str, marker: str) -> list[list[str]]:
    """The cells of the markdown table right under the line `<!-- marker -->` (header and rule left out)."""
    lines = text.splitlines()
    start = lines.index(f"<!-- {marker} -->") + 3
    rows = itertools.takewhile(lambda r: r.startswith("|"), lines[start:])
    return [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]


def test_every_asset_check_is_explained() -> None:
    from creative_assets.definitions import defs

    defined = {
        (key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys
    }
    documented = {
        (asset, check) for asset, check, _ in marked_table(README.read_text(encoding="utf-8"), "asset checks")
    }
    assert documented == defined


def test_every_demo_summary_column_is_explained(smoke_pipeline, placeholders) -> None:
    from creative_assets.pipeline_runs import summary_table

    shown = set(summary_table(smoke_pipeline.settings, ["acme", "globex"]).columns) - {"verdict"}
    rows = marked_table(README.read_text(encoding="utf-8"), "demo summary columns")
    columns = [
        DocumentedColumn(n.strip(), frozenset(), False)
        for cell, _ in rows
        for n in cell.replace("`", "").split(",")
    ]
    assert set(expand(columns, {**placeholders, "c": placeholders["c"][:1]})) == shown
