"""Weekly marketing-mix tables from impressions (and spend) joined to what the creatives show.

Two shapes of one join:
- `mmm_panel` (wide): one row per (week_start, brand) on a complete week grid, every channel's media and every
  object's share as its own column — what PyMC-Marketing's `MMM` and Meridian take without reshaping (brand is
  their geo dimension, `spend_<channel>` the media, `share_<object>` the controls).
- `weekly_panel` (long, the `mmm_features` table): one row per week × brand [× channel], for analysts who
  pivot themselves.

Weeks start on Monday, or on Sunday (`week_start` setting). A week with no impressions is a row of zeros, never
a missing row: a pivot without `fillna(0)` gives an MMM NaN channel scales. Impressions of creatives the
features table does not know stay in the totals, are counted per week (`unmatched_impressions`,
`unmatched_creatives`; `impressions_unmatched` in the long table) and listed (`unmatched`), so an analyst can
fix the join — they are never dropped.

Types: impressions are int64 when the source gives integers (CSV cells that are whole-number literals, a
Parquet integer column) and float64 when it carries fractional, modelled impressions; spend is float64 (money
with cents; Parquet decimals become float64), NaN throughout when the input has no spend column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from creative_assets.settings import validate_brand
from creative_assets.tables.schemas import (
    PANEL_WINDOWS_S,
    impressions_schema,
    mmm_features_schema,
    mmm_panel_schema,
    unmatched_schema,
)

REQUIRED_COLUMNS = ("date", "brand", "creative_id", "impressions")
OPTIONAL_COLUMNS = ("spend", "channel")
# pandas day_of_week of each allowed first day of a week.
WEEK_STARTS = {"monday": 0, "sunday": 6}
# The one channel of an impressions file without a channel column.
NO_CHANNEL = "all"
_SHOW_ROWS = 5
_INTEGER_TEXT = re.compile(r"^\+?[0-9]+$")


class ImpressionsError(ValueError):
    """An impressions file that cannot be used; the message names the file, column and rows."""


@dataclass
class WeeklyPanel:
    """A weekly table and the creatives whose impressions could not be matched to creative features."""

    panel: pd.DataFrame
    unmatched: pd.DataFrame

    @property
    def unmatched_count(self) -> int:
        """Distinct (brand, creative_id) pairs with impressions but no creative features."""
        return len(self.unmatched)

    @property
    def unmatched_impressions(self) -> float:
        """Impressions of unmatched creatives (included in the panel's totals)."""
        return float(self.unmatched["impressions"].sum())


def _rows(mask: pd.Series, line_offset: int) -> str:
    where = np.flatnonzero(mask.to_numpy()) + line_offset
    shown = ", ".join(str(int(i)) for i in where[:_SHOW_ROWS])
    more = f" and {len(where) - _SHOW_ROWS} more" if len(where) > _SHOW_ROWS else ""
    return f"{shown}{more}"


def _numbers(raw: pd.Series, column: str, source: str, where: str, line_offset: int) -> pd.Series:
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = values.isna() | ~np.isfinite(values.fillna(0.0))
    if bad.any():
        raise ImpressionsError(
            f"{source}: column {column!r} is empty or not a number at {where} {_rows(bad, line_offset)}"
        )
    negative = values < 0
    if negative.any():
        raise ImpressionsError(
            f"{source}: column {column!r} is negative at {where} {_rows(negative, line_offset)}"
        )
    return values


def _is_integer_column(raw: pd.Series) -> bool:
    """Integers in the source: an integer column, or text cells that are all whole-number literals."""
    if pd.api.types.is_integer_dtype(raw.dtype):
        return True
    if pd.api.types.is_float_dtype(raw.dtype) or pd.api.types.is_bool_dtype(raw.dtype):
        return False
    text = raw.astype("string").str.strip()
    return bool(text.str.fullmatch(_INTEGER_TEXT.pattern).fillna(False).all())


def _texts(raw: pd.Series, column: str, source: str, where: str, line_offset: int) -> pd.Series:
    values = raw.astype("string").str.strip()
    bad = values.isna() | (values == "")
    if bad.any():
        raise ImpressionsError(f"{source}: column {column!r} is empty at {where} {_rows(bad, line_offset)}")
    return values


def validate_impressions(raw: pd.DataFrame, source: str = "impressions", csv: bool = False) -> pd.DataFrame:
    """`raw` checked and typed as the impressions table; ImpressionsError names the column and rows at fault."""
    columns = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        found = ", ".join(map(str, raw.columns)) or "none"
        raise ImpressionsError(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}; found: {found})"
        )
    raw = raw.rename(columns={v: k for k, v in columns.items()}).reset_index(drop=True)
    # CSV: report file lines (header is line 1); other sources: 1-based data rows.
    where, offset = ("lines", 2) if csv else ("rows", 1)

    dates = pd.to_datetime(raw["date"], errors="coerce")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert(None)
    bad_dates = dates.isna()
    if bad_dates.any():
        raise ImpressionsError(
            f"{source}: column 'date' is empty or not a date at {where} {_rows(bad_dates, offset)}"
        )
    brands = _texts(raw["brand"], "brand", source, where, offset)
    for brand in brands.unique():
        try:
            validate_brand(str(brand))
        except ValueError as exc:
            raise ImpressionsError(f"{source}: column 'brand': {exc}") from None
    impressions = _numbers(raw["impressions"], "impressions", source, where, offset)
    impressions_dtype = "int64" if _is_integer_column(raw["impressions"]) else "float64"
    out = pd.DataFrame(
        {
            "date": dates.dt.normalize(),
            "brand": brands,
            "creative_id": _texts(raw["creative_id"], "creative_id", source, where, offset),
            "impressions": impressions,
            "spend": (
                _numbers(raw["spend"], "spend", source, where, offset)
                if "spend" in raw.columns
                else pd.Series(np.nan, index=raw.index)
            ),
            "channel": (
                _texts(raw["channel"], "channel", source, where, offset)
                if "channel" in raw.columns
                else pd.Series(pd.NA, index=raw.index, dtype="string")
            ),
        }
    )
    return impressions_schema(impressions_dtype).conform(out)


def load_impressions(path: Path) -> pd.DataFrame:
    """Read and validate an impressions CSV or Parquet file (date, brand, creative_id, impressions [, spend, channel])."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # Read every cell as text so bad values are reported by line instead of silently coerced.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
        return validate_impressions(raw, source=path.name, csv=True)
    if suffix == ".parquet":
        return validate_impressions(pd.read_parquet(path), source=path.name)
    raise ImpressionsError(f"{path.name}: impressions must be a .csv or .parquet file")


def impressions_dtype(impressions: pd.DataFrame) -> str:
    """`int64` or `float64`: the dtype every impressions column of a table built from `impressions` gets."""
    return "int64" if pd.api.types.is_integer_dtype(impressions["impressions"].dtype) else "float64"


def week_start(dates: pd.Series, first_day: str = "monday") -> pd.Series:
    """The first day (Monday or Sunday, at midnight) of the week each date falls in."""
    if first_day not in WEEK_STARTS:
        raise ValueError(f"week_start must be one of {', '.join(WEEK_STARTS)}, not {first_day!r}")
    back = (dates.dt.day_of_week - WEEK_STARTS[first_day]) % 7
    return dates.dt.normalize() - pd.to_timedelta(back, unit="D")


def channel_column_name(channel: str) -> str:
    """A channel as a column-name part: lower case, runs of other characters as one `_` (`Paid Social` → `paid_social`)."""
    name = re.sub(r"[^a-z0-9]+", "_", str(channel).strip().lower()).strip("_")
    if not name:
        raise ImpressionsError(f"channel {channel!r} has no letters or digits to name its columns with")
    if name[0].isdigit():
        name = f"c{name}"
    return name


@dataclass(frozen=True)
class PanelGrid:
    """The weeks and channels every brand's panel has, so brand partitions stack into one balanced table."""

    weeks: pd.DatetimeIndex
    channels: dict[str, str]  # channel as in the impressions → its column-name part, in column order


def panel_grid(impressions: pd.DataFrame, first_day: str = "monday") -> PanelGrid:
    """Every week from the first to the last week of `impressions`, and its channels (all brands together)."""
    if impressions.empty:
        return PanelGrid(pd.DatetimeIndex([], dtype="datetime64[ns]"), {})
    weeks = week_start(impressions["date"], first_day)
    grid = pd.date_range(weeks.min(), weeks.max(), freq="7D").astype("datetime64[ns]")
    raw = impressions["channel"]
    if raw.isna().all():
        return PanelGrid(grid, {NO_CHANNEL: NO_CHANNEL})
    if raw.isna().any():
        raise ImpressionsError("a channel is needed on every impressions row, or on none")
    names: dict[str, str] = {}
    for channel in sorted(raw.astype(str).unique()):
        names[channel] = channel_column_name(channel)
    by_name: dict[str, list[str]] = {}
    for channel, name in names.items():
        by_name.setdefault(name, []).append(channel)
    clashes = {name: chans for name, chans in by_name.items() if len(chans) > 1}
    if clashes:
        said = "; ".join(f"{' and '.join(map(repr, c))} → {n}" for n, c in sorted(clashes.items()))
        raise ImpressionsError(f"channels differ only in case or punctuation: {said}")
    return PanelGrid(grid, dict(sorted(names.items(), key=lambda kv: kv[1])))


def _joined(
    impressions: pd.DataFrame, features: pd.DataFrame, feature_columns: Sequence[str], first_day: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Impressions rows with their week and their creative's features; the mask of rows that matched."""
    missing = [c for c in ["brand", "creative_id", *feature_columns] if c not in features.columns]
    if missing:
        raise KeyError(f"creative features lack column(s) {', '.join(missing)}")
    feats = features[["brand", "creative_id", *feature_columns]].astype(
        {"brand": object, "creative_id": object}
    )
    duplicated = feats.duplicated(["brand", "creative_id"])
    if duplicated.any():
        first = feats.loc[duplicated, "creative_id"].iloc[0]
        raise ValueError(f"creative features list {int(duplicated.sum())} creative(s) twice, e.g. {first}")
    imp = impressions.assign(
        brand=impressions["brand"].astype(object), creative_id=impressions["creative_id"].astype(object)
    )
    merged = imp.merge(feats, on=["brand", "creative_id"], how="left", indicator=True)
    merged["week_start"] = week_start(merged["date"], first_day)
    return merged, (merged["_merge"] == "both").to_numpy()


def _flag(merged: pd.DataFrame, column: str, matched: np.ndarray) -> np.ndarray:
    return matched & merged[column].fillna(False).to_numpy(dtype=bool)


def _unmatched(merged: pd.DataFrame, matched: np.ndarray, has_spend: bool, dtype: str) -> pd.DataFrame:
    rows = merged.loc[~matched]
    table = (
        rows.groupby(["brand", "creative_id"], sort=True)
        .agg(
            rows=("impressions", "size"),
            impressions=("impressions", "sum"),
            spend=("spend", "sum"),
            first_date=("date", "min"),
            last_date=("date", "max"),
        )
        .reset_index()
    )
    if not has_spend:
        table["spend"] = np.nan
    return unmatched_schema(dtype).conform(table)


def weekly_panel(
    impressions: pd.DataFrame,
    features: pd.DataFrame,
    objects: Sequence[str],
    by_channel: bool = False,
    first_day: str = "monday",
) -> WeeklyPanel:
    """The long table (`mmm_features`): per week × brand [× channel] totals and per object impressions/spend/share."""
    dtype = impressions_dtype(impressions)
    schema = mmm_features_schema(objects, by_channel, dtype)
    imp = impressions_schema(dtype).conform(impressions)
    if by_channel and imp["channel"].isna().any():
        raise ImpressionsError("a panel by channel needs a channel on every impressions row")
    has_spend = bool(imp["spend"].notna().any())

    merged, matched = _joined(imp, features, [f"{o}_present" for o in objects], first_day)
    amount = merged["impressions"].to_numpy()
    spend = merged["spend"].fillna(0.0).to_numpy()
    work = pd.DataFrame(
        {
            "week_start": merged["week_start"],
            "brand": merged["brand"],
            "creative_id": merged["creative_id"],
            "impressions": amount,
            "spend": spend,
            "impressions_unmatched": np.where(matched, 0, amount),
        }
    )
    if by_channel:
        work["channel"] = merged["channel"].astype(object)
    for o in objects:
        flag = _flag(merged, f"{o}_present", matched)
        work[f"impressions_{o}"] = np.where(flag, amount, 0)
        work[f"spend_{o}"] = np.where(flag, spend, 0.0)

    keys = ["week_start", "brand", "channel"] if by_channel else ["week_start", "brand"]
    sums = [c for c in work.columns if c not in keys and c != "creative_id"]
    grouped = work.groupby(keys, sort=True)
    panel = grouped[sums].sum()
    panel["creatives"] = grouped["creative_id"].nunique()
    panel = _fill_missing_weeks(panel.reset_index(), keys)

    for o in objects:
        panel[f"share_{o}"] = _ratio(panel[f"impressions_{o}"], panel["impressions"])
    if not has_spend:
        panel["spend"] = np.nan
        for o in objects:
            panel[f"spend_{o}"] = np.nan
    return WeeklyPanel(panel=schema.conform(panel), unmatched=_unmatched(merged, matched, has_spend, dtype))


def _ratio(part: pd.Series, whole: pd.Series) -> np.ndarray:
    """part / whole, 0.0 where whole is 0 (a week without impressions shows nothing)."""
    p = part.to_numpy(dtype=np.float64)
    w = whole.to_numpy(dtype=np.float64)
    out = np.zeros_like(p)
    np.divide(p, w, out=out, where=w > 0)
    return out


def _fill_missing_weeks(panel: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Add zero rows for weeks without impressions between each group's first and last week."""
    if panel.empty:
        return panel
    series_keys = [k for k in keys if k != "week_start"]
    frames = []
    for group, rows in panel.groupby(series_keys, sort=True):
        weeks = pd.date_range(rows["week_start"].min(), rows["week_start"].max(), freq="7D")
        full = pd.DataFrame({"week_start": weeks})
        for name, value in zip(series_keys, group if isinstance(group, tuple) else (group,), strict=True):
            full[name] = value
        frames.append(full)
    grid = pd.concat(frames, ignore_index=True)
    grid["week_start"] = grid["week_start"].astype(panel["week_start"].dtype)
    out = grid.merge(panel, on=keys, how="left")
    value_columns = [c for c in out.columns if c not in keys]
    out[value_columns] = out[value_columns].fillna(0)
    return out.sort_values(keys, kind="mergesort").reset_index(drop=True)


def _panel_feature_columns(objects: Sequence[str]) -> list[str]:
    columns = ["media_type"]
    for o in objects:
        columns += [f"{o}_present", *(f"{o}_in_first_{w}s" for w in PANEL_WINDOWS_S), f"{o}_frame_share"]
    return columns


def mmm_panel(
    impressions: pd.DataFrame,
    features: pd.DataFrame,
    objects: Sequence[str],
    grid: PanelGrid | None = None,
    first_day: str = "monday",
) -> WeeklyPanel:
    """The wide panel: one row per week of `grid` × brand of `impressions`, zeros where nothing ran.

    `grid` (default: from `impressions`) fixes the weeks and channels; give every brand the grid of the whole
    impressions file so each brand's partition has the same weeks and the same columns.
    """
    grid = grid if grid is not None else panel_grid(impressions, first_day)
    dtype = impressions_dtype(impressions)
    schema = mmm_panel_schema(objects, list(grid.channels.values()), dtype)
    imp = impressions_schema(dtype).conform(impressions)
    if imp.empty:
        return WeeklyPanel(schema.empty(), unmatched_schema(dtype).empty())
    has_spend = bool(imp["spend"].notna().any())

    merged, matched = _joined(imp, features, _panel_feature_columns(objects), first_day)
    outside = ~merged["week_start"].isin(grid.weeks)
    if outside.any():
        raise ValueError(
            f"impressions in week {merged.loc[outside, 'week_start'].min():%Y-%m-%d} lie outside the grid"
        )
    channel = merged["channel"].astype(object).fillna(NO_CHANNEL).to_numpy()
    unknown = sorted(set(channel) - set(grid.channels))
    if unknown:
        raise ValueError(f"channel(s) {', '.join(unknown)} are not in the grid")
    amount = merged["impressions"].to_numpy()
    spend = merged["spend"].fillna(0.0).to_numpy()
    video = matched & (merged["media_type"].astype(object) == "video").to_numpy()

    cols: dict[str, np.ndarray] = {
        "impressions": amount,
        "spend": spend,
        "unmatched_impressions": np.where(matched, 0, amount),
        "unmatched_spend": np.where(matched, 0.0, spend),
        "video_impressions": np.where(video, amount, 0),
    }
    for raw, c in grid.channels.items():
        on = channel == raw
        cols[f"impressions_{c}"] = np.where(on, amount, 0)
        cols[f"spend_{c}"] = np.where(on, spend, 0.0)
        for o in objects:
            shows = _flag(merged, f"{o}_present", matched)
            cols[f"spend_{c}_{o}"] = np.where(on & shows, spend, 0.0)
            cols[f"spend_{c}_no_{o}"] = np.where(on & matched & ~shows, spend, 0.0)
    # Numerators of the shares, summed per week and divided once the week's totals are known.
    for o in objects:
        cols[f"_with_{o}"] = np.where(_flag(merged, f"{o}_present", matched), amount, 0)
        for w in PANEL_WINDOWS_S:
            cols[f"_with_{o}_{w}s"] = np.where(
                _flag(merged, f"{o}_in_first_{w}s", matched) & video, amount, 0
            )
        # A video without sampled frames (<NA> share) counts as showing nothing: the share errs low.
        frame_share = merged[f"{o}_frame_share"].astype("Float64").fillna(0.0).to_numpy(dtype=np.float64)
        cols[f"_frames_{o}"] = np.where(video, amount * frame_share, 0.0)

    work = pd.DataFrame(cols)
    work["week_start"] = merged["week_start"].to_numpy()
    work["brand"] = merged["brand"].to_numpy()
    index = pd.MultiIndex.from_product(
        [grid.weeks, sorted(imp["brand"].astype(str).unique())], names=["week_start", "brand"]
    )
    grouped = work.groupby(["week_start", "brand"], sort=True)
    panel = grouped[list(cols)].sum().reindex(index, fill_value=0)
    creative = merged["creative_id"].to_numpy()
    by_week = pd.DataFrame(
        {"week_start": work["week_start"], "brand": work["brand"], "creative_id": creative}
    )
    panel["creatives"] = (
        by_week.groupby(["week_start", "brand"])["creative_id"].nunique().reindex(index, fill_value=0)
    )
    panel["unmatched_creatives"] = (
        by_week[~matched]
        .groupby(["week_start", "brand"])["creative_id"]
        .nunique()
        .reindex(index, fill_value=0)
    )
    for o in objects:
        panel[f"share_{o}"] = _ratio(panel[f"_with_{o}"], panel["impressions"])
        for w in PANEL_WINDOWS_S:
            panel[f"share_{o}_in_first_{w}s"] = _ratio(panel[f"_with_{o}_{w}s"], panel["video_impressions"])
        panel[f"frame_share_{o}"] = _ratio(panel[f"_frames_{o}"], panel["video_impressions"])
    if not has_spend:
        for name, dt in schema.dtypes.items():
            if name.startswith("spend") and dt == "float64":
                panel[name] = np.nan
    panel = panel.reset_index()
    return WeeklyPanel(panel=schema.conform(panel), unmatched=_unmatched(merged, matched, has_spend, dtype))
