"""Column lists and dtypes of the analyst tables, and a schema check for asset checks.

Every table is a pandas DataFrame with stable dtypes (strings `string`, counts `int64`, nullable ints `Int64`,
floats `float64`, nullable floats `Float64`, flags `bool`, dates `datetime64[ns]`). A `TableSchema` names the
columns in order, their dtypes and the key columns that may never be null; `conform` casts a frame to it and
`arrow_schema` gives the Parquet schema each part is written with, so parts written at different times read
back as one table.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
    "Float64": pa.float64(),
    "bool": pa.bool_(),
    "datetime64[ns]": pa.timestamp("ns"),
}


@dataclass(frozen=True)
class TableSchema:
    """A table's columns in order, their pandas dtypes, and the key columns that must not be null."""

    name: str
    dtypes: Mapping[str, str]
    keys: tuple[str, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        """Column names in table order."""
        return list(self.dtypes)

    def empty(self) -> pd.DataFrame:
        """A table with no rows but every column and dtype."""
        return _empty(self.name, tuple(self.dtypes.items())).copy()

    def conform(self, df: pd.DataFrame) -> pd.DataFrame:
        """`df` reduced to the schema's columns, in order, cast to their dtypes; KeyError names a missing one."""
        missing = [c for c in self.dtypes if c not in df.columns]
        if missing:
            raise KeyError(f"{self.name}: missing column(s) {', '.join(missing)}")
        out = df.loc[:, self.columns].reset_index(drop=True)
        return out.astype(dict(self.dtypes))

    def arrow_schema(self) -> pa.Schema:
        """The Parquet/Arrow schema parts of this table are written with.

        It carries pandas' metadata, so a zero-row part written from the schema alone reads back in pandas with
        the schema's dtypes (`string`, `Int64`, …) like a part with rows, not with pandas' defaults.
        """
        return _arrow_schema(self.name, tuple(self.dtypes.items()))


# Built once per schema: every committed batch needs both, and building them took ~8 ms a batch.
@functools.cache
def _empty(name: str, dtypes: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in dtypes})


@functools.cache
def _arrow_schema(name: str, dtypes: tuple[tuple[str, str], ...]) -> pa.Schema:
    fields = [pa.field(c, _ARROW_TYPES[d]) for c, d in dtypes]
    metadata = pa.Schema.from_pandas(_empty(name, dtypes), preserve_index=False).metadata
    return pa.schema(fields, metadata=metadata)


def check_schema(df: pd.DataFrame, schema: TableSchema) -> list[str]:
    """Problems with `df` against `schema`: missing or unexpected columns, wrong dtypes, null keys."""
    problems: list[str] = []
    for column, dtype in schema.dtypes.items():
        if column not in df.columns:
            problems.append(f"missing column {column!r}")
        elif str(df[column].dtype) != dtype:
            problems.append(f"column {column!r} has dtype {df[column].dtype}, expected {dtype}")
    for column in df.columns:
        if column not in schema.dtypes:
            problems.append(f"unexpected column {column!r}")
    for key in schema.keys:
        if key in df.columns:
            nulls = int(df[key].isna().sum())
            if nulls:
                problems.append(f"key column {key!r} has {nulls} null value(s)")
    return problems


# The errors table every stage shares.
ERROR_COLUMNS = ["brand", "file", "record", "stage", "reason"]
DETECTION_ERRORS = TableSchema(
    "detection_errors", dict.fromkeys(ERROR_COLUMNS, "string"), keys=("brand", "file", "stage")
)

DETECTIONS = TableSchema(
    "detections",
    {
        "brand": "string",
        "creative_id": "string",
        "media_type": "string",
        "frame_index": "Int64",  # <NA> for still images
        "timestamp_s": "Float64",  # <NA> for still images
        "object": "string",
        "class_name": "string",
        "score": "float64",
        "x_min": "float64",
        "y_min": "float64",
        "x_max": "float64",
        "y_max": "float64",
        "box_area_frac": "float64",
        "above_threshold": "bool",
        "threshold": "float64",
        "model_id": "string",
        "model_beats_baseline": "bool",  # chosen_model's verdict against "always absent" on the test split
        "backend": "string",
        "batch": "string",
    },
    keys=("brand", "creative_id", "media_type", "object", "class_name", "model_id", "batch"),
)
DETECTION_COLUMNS = DETECTIONS.columns
DETECTION_DTYPES = dict(DETECTIONS.dtypes)

_FEATURE_BASE = {
    "brand": "string",
    "creative_id": "string",
    "media_type": "string",
    "duration_s": "float64",
    "frames_sampled": "int64",
}
_FEATURE_PER_OBJECT = {
    "present": "bool",
    "count": "int64",
    "max_score": "float64",
    "max_area_frac": "float64",
    "frame_share": "Float64",  # videos only; <NA> for images
    "first_seen_s": "Float64",  # videos only; <NA> for images and videos without the object
    "in_first_3s": "bool",  # False for images
    "in_first_5s": "bool",  # False for images
}


def feature_schema(objects: Sequence[str]) -> TableSchema:
    """The creative_features table for `objects`: base columns, then each object's block in the given order."""
    dtypes = dict(_FEATURE_BASE)
    for o in objects:
        for suffix, dtype in _FEATURE_PER_OBJECT.items():
            dtypes[f"{o}_{suffix}"] = dtype
    return TableSchema("creative_features", dtypes, keys=("brand", "creative_id", "media_type"))


def FEATURE_COLUMNS(objects: Sequence[str]) -> list[str]:
    """Column names of the creative_features table for `objects`, in table order."""
    return feature_schema(objects).columns


# Impressions are counts: int64 when the source gives whole numbers as integers, float64 when it carries
# fractional (modelled) impressions. The dtype follows the source through every impressions column below.
IMPRESSION_DTYPES = ("int64", "float64")


def _impressions_dtype(dtype: str) -> str:
    if dtype not in IMPRESSION_DTYPES:
        raise ValueError(f"impressions dtype must be one of {', '.join(IMPRESSION_DTYPES)}, not {dtype!r}")
    return dtype


def impressions_schema(impressions_dtype: str = "int64") -> TableSchema:
    """The validated impressions table; `impressions` is int64 or float64 as the source gives it."""
    return TableSchema(
        "impressions",
        {
            "date": "datetime64[ns]",
            "brand": "string",
            "creative_id": "string",
            "impressions": _impressions_dtype(impressions_dtype),
            "spend": "float64",  # NaN everywhere when the input has no spend column
            "channel": "string",  # <NA> everywhere when the input has no channel column
        },
        keys=("date", "brand", "creative_id"),
    )


IMPRESSION_COLUMNS = impressions_schema().columns


def mmm_features_schema(
    objects: Sequence[str], by_channel: bool = False, impressions_dtype: str = "int64"
) -> TableSchema:
    """The long weekly table: one row per week × brand [× channel], totals, then each object's block."""
    count = _impressions_dtype(impressions_dtype)
    dtypes = {"week_start": "datetime64[ns]", "brand": "string"}
    if by_channel:
        dtypes["channel"] = "string"
    dtypes.update(
        {
            "creatives": "int64",
            "impressions": count,
            "spend": "float64",
            "impressions_unmatched": count,
        }
    )
    for o in objects:
        dtypes[f"impressions_{o}"] = count
        dtypes[f"spend_{o}"] = "float64"
        dtypes[f"share_{o}"] = "float64"
    keys = ("week_start", "brand", "channel") if by_channel else ("week_start", "brand")
    return TableSchema("mmm_features", dtypes, keys=keys)


def MMM_COLUMNS(objects: Sequence[str], by_channel: bool = False) -> list[str]:
    """Column names of the long weekly table (`mmm_features`), in table order."""
    return mmm_features_schema(objects, by_channel).columns


# Early-branding windows of the panel's timing shares; the same windows as creative_features' in_first_<n>s.
PANEL_WINDOWS_S = (3, 5)
SAFE_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


def mmm_panel_schema(
    objects: Sequence[str], channels: Sequence[str], impressions_dtype: str = "int64"
) -> TableSchema:
    """The wide panel: one row per week × brand; totals, each channel's media, the split spend, the shares.

    `channels` are safe column-name parts (`channel_column_name`). Only channel columns start with
    `impressions_`/`spend_`, so a channel called `video` or `unmatched` cannot clash with a total; ValueError
    when two columns would still share a name (channel `tv_logo` beside channel `tv` and object `logo`) or a
    name is not a safe identifier.
    """
    count = _impressions_dtype(impressions_dtype)
    dtypes: dict[str, str] = {
        "week_start": "datetime64[ns]",
        "brand": "string",
        "creatives": "int64",
        "unmatched_creatives": "int64",
        "impressions": count,
        "spend": "float64",
        "unmatched_impressions": count,
        "unmatched_spend": "float64",
        "video_impressions": count,
    }
    names: list[str] = list(dtypes)
    for c in channels:
        names += [f"impressions_{c}", f"spend_{c}"]
        dtypes[f"impressions_{c}"] = count
        dtypes[f"spend_{c}"] = "float64"
    for c in channels:
        for o in objects:
            for name in (f"spend_{c}_{o}", f"spend_{c}_no_{o}"):
                names.append(name)
                dtypes[name] = "float64"
    for o in objects:
        for name in (
            f"share_{o}",
            *(f"share_{o}_in_first_{w}s" for w in PANEL_WINDOWS_S),
            f"frame_share_{o}",
        ):
            names.append(name)
            dtypes[name] = "float64"
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(
            f"mmm_panel: channel and object names give the same column twice: {', '.join(clashes)}"
        )
    unsafe = [n for n in names if not SAFE_IDENTIFIER.fullmatch(n)]
    if unsafe:
        raise ValueError(f"mmm_panel: column name(s) {', '.join(unsafe)} are not safe identifiers")
    return TableSchema("mmm_panel", dtypes, keys=("week_start", "brand"))


def unmatched_schema(impressions_dtype: str = "int64") -> TableSchema:
    """Creatives with impressions but no row in creative_features: what to fix so the join is complete."""
    return TableSchema(
        "mmm_unmatched_creatives",
        {
            "brand": "string",
            "creative_id": "string",
            "rows": "int64",
            "impressions": _impressions_dtype(impressions_dtype),
            "spend": "float64",
            "first_date": "datetime64[ns]",
            "last_date": "datetime64[ns]",
        },
        keys=("brand", "creative_id"),
    )


UNMATCHED_COLUMNS = unmatched_schema().columns
