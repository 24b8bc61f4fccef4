"""The weekly marketing-mix panel: impressions (and spend) per week, split by which objects the creatives show.

Shape: wide, one row per week × brand [× channel] — the layout Robyn, Meridian and PyMC-Marketing take, with
brand in the role of a geo. Weeks start on Monday (`week_start`). Weeks with no impressions between a group's
first and last week are rows of zeros, so every series is contiguous. For each object `o`:
`impressions_o` / `spend_o` are the impressions and spend of creatives with `o_present`, and
`share_o = impressions_o / impressions` (0 when the week has no impressions).

Impressions of creatives the features table does not know are kept in the totals, counted again in
`impressions_unmatched`, and listed in `WeeklyPanel.unmatched` — never dropped silently. Impressions and spend
are float64 (sources often carry fractional, modelled impressions); spend is NaN throughout when the input has
no spend column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from creative_assets.settings import validate_brand
from creative_assets.tables.schemas import IMPRESSIONS, UNMATCHED, mmm_panel_schema

REQUIRED_COLUMNS = ("date", "brand", "creative_id", "impressions")
OPTIONAL_COLUMNS = ("spend", "channel")
_SHOW_ROWS = 5


class ImpressionsError(ValueError):
    """An impressions file that cannot be used; the message names the file, column and rows."""


@dataclass
class WeeklyPanel:
    """The panel and the creatives whose impressions could not be matched to creative features."""

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
    out = pd.DataFrame(
        {
            "date": dates.dt.normalize(),
            "brand": brands,
            "creative_id": _texts(raw["creative_id"], "creative_id", source, where, offset),
            "impressions": _numbers(raw["impressions"], "impressions", source, where, offset),
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
    return IMPRESSIONS.conform(out)


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


def _week_start(dates: pd.Series) -> pd.Series:
    return dates.dt.normalize() - pd.to_timedelta(dates.dt.day_of_week, unit="D")


def weekly_panel(
    impressions: pd.DataFrame, features: pd.DataFrame, objects: Sequence[str], by_channel: bool = False
) -> WeeklyPanel:
    """Weekly (Monday) panel per brand [× channel]: totals and, per object, impressions/spend/share."""
    schema = mmm_panel_schema(objects, by_channel)
    imp = IMPRESSIONS.conform(impressions)
    if by_channel and imp["channel"].isna().any():
        raise ImpressionsError("a panel by channel needs a channel on every impressions row")
    has_spend = bool(imp["spend"].notna().any())

    present_cols = [f"{o}_present" for o in objects]
    missing = [c for c in ["brand", "creative_id", *present_cols] if c not in features.columns]
    if missing:
        raise KeyError(f"creative features lack column(s) {', '.join(missing)}")
    feats = features[["brand", "creative_id", *present_cols]].astype({"brand": object, "creative_id": object})
    duplicated = feats.duplicated(["brand", "creative_id"])
    if duplicated.any():
        first = feats.loc[duplicated, "creative_id"].iloc[0]
        raise ValueError(f"creative features list {int(duplicated.sum())} creative(s) twice, e.g. {first}")

    imp = imp.assign(brand=imp["brand"].astype(object), creative_id=imp["creative_id"].astype(object))
    merged = imp.merge(feats, on=["brand", "creative_id"], how="left", indicator=True)
    matched = (merged["_merge"] == "both").to_numpy()
    spend = merged["spend"].fillna(0.0).to_numpy()
    work = pd.DataFrame(
        {
            "week_start": _week_start(merged["date"]),
            "brand": merged["brand"],
            "creative_id": merged["creative_id"],
            "impressions": merged["impressions"].to_numpy(),
            "spend": spend,
            "impressions_unmatched": np.where(matched, 0.0, merged["impressions"].to_numpy()),
        }
    )
    if by_channel:
        work["channel"] = merged["channel"].astype(object)
    for o in objects:
        flag = matched & merged[f"{o}_present"].fillna(False).to_numpy(dtype=bool)
        work[f"impressions_{o}"] = np.where(flag, work["impressions"], 0.0)
        work[f"spend_{o}"] = np.where(flag, spend, 0.0)

    keys = ["week_start", "brand", "channel"] if by_channel else ["week_start", "brand"]
    sums = [c for c in work.columns if c not in keys and c != "creative_id"]
    grouped = work.groupby(keys, sort=True)
    panel = grouped[sums].sum()
    panel["creatives"] = grouped["creative_id"].nunique()
    panel = _fill_missing_weeks(panel.reset_index(), keys)

    for o in objects:
        total = panel["impressions"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            panel[f"share_{o}"] = np.where(total > 0, panel[f"impressions_{o}"] / total, 0.0)
    if not has_spend:
        panel["spend"] = np.nan
        for o in objects:
            panel[f"spend_{o}"] = np.nan

    unmatched_rows = merged.loc[~matched]
    unmatched = (
        unmatched_rows.groupby(["brand", "creative_id"], sort=True)
        .agg(rows=("impressions", "size"), impressions=("impressions", "sum"), spend=("spend", "sum"))
        .reset_index()
    )
    if not has_spend:
        unmatched["spend"] = np.nan
    return WeeklyPanel(panel=schema.conform(panel), unmatched=UNMATCHED.conform(unmatched))


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
