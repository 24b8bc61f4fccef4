"""The wide MMM panel recomputed by DuckDB from raw/impressions.csv and the creative_features warehouse folder.

DuckDB is the independent oracle: its own CSV reader, its own date arithmetic for the week start, a LEFT JOIN
and FILTERed sums — none of the panel's pandas code.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from creative_assets.tables.mmm import load_impressions, mmm_panel
from creative_assets.tables.warehouse import read_table, write_part
from creative_assets_tests.support.mmm_data import OBJECTS, mmm_data

# The channels of the generated file and the column names the panel must give them.
CHANNEL_COLUMNS = {"Paid Social": "paid_social", "TV": "tv", "search": "search"}
# DuckDB's dayofweek: Sunday 0 … Saturday 6; a week's first day is `days_back` days before a date.
DAYS_BACK = {"monday": "(dayofweek(d) + 6) % 7", "sunday": "dayofweek(d)"}


def _ratio(part: str, whole: str) -> str:
    return f"CASE WHEN {whole} > 0 THEN CAST({part} AS DOUBLE) / {whole} ELSE 0.0 END"


def oracle_sql(csv: Path, features: Path, first_day: str) -> str:
    video = "matched AND media_type = 'video'"
    sums = [
        "count(DISTINCT creative_id) AS creatives",
        "count(DISTINCT creative_id) FILTER (WHERE NOT matched) AS unmatched_creatives",
        "sum(impressions) AS impressions",
        "sum(spend) AS spend",
        "sum(impressions) FILTER (WHERE NOT matched) AS unmatched_impressions",
        "sum(spend) FILTER (WHERE NOT matched) AS unmatched_spend",
        f"sum(impressions) FILTER (WHERE {video}) AS video_impressions",
    ]
    for raw, c in CHANNEL_COLUMNS.items():
        sums += [
            f"sum(impressions) FILTER (WHERE channel = '{raw}') AS impressions_{c}",
            f"sum(spend) FILTER (WHERE channel = '{raw}') AS spend_{c}",
        ]
    for raw, c in CHANNEL_COLUMNS.items():
        for o in OBJECTS:
            sums += [
                f"sum(spend) FILTER (WHERE channel = '{raw}' AND matched AND {o}_present) AS spend_{c}_{o}",
                f"sum(spend) FILTER (WHERE channel = '{raw}' AND matched AND NOT {o}_present) AS spend_{c}_no_{o}",
            ]
    for o in OBJECTS:
        sums += [
            f"sum(impressions) FILTER (WHERE matched AND {o}_present) AS with_{o}",
            f"sum(impressions) FILTER (WHERE {video} AND {o}_in_first_3s) AS with_{o}_3s",
            f"sum(impressions) FILTER (WHERE {video} AND {o}_in_first_5s) AS with_{o}_5s",
            f"sum(impressions * coalesce({o}_frame_share, 0)) FILTER (WHERE {video}) AS frames_{o}",
        ]
    names = [s.rsplit(" AS ", 1)[1] for s in sums]
    filled = ",\n  ".join(f"coalesce(a.{n}, 0) AS {n}" for n in names)
    shares = []
    for o in OBJECTS:
        shares += [
            f"{_ratio(f'with_{o}', 'impressions')} AS share_{o}",
            f"{_ratio(f'with_{o}_3s', 'video_impressions')} AS share_{o}_in_first_3s",
            f"{_ratio(f'with_{o}_5s', 'video_impressions')} AS share_{o}_in_first_5s",
            f"{_ratio(f'frames_{o}', 'video_impressions')} AS frame_share_{o}",
        ]
    return f"""
WITH raw AS (
  SELECT * FROM read_csv('{csv.as_posix()}', header = true, columns = {{
    'date': 'DATE', 'brand': 'VARCHAR', 'creative_id': 'VARCHAR', 'impressions': 'BIGINT',
    'spend': 'DOUBLE', 'channel': 'VARCHAR'}})
),
imp AS (
  SELECT *, CAST(d - {DAYS_BACK[first_day]} * INTERVAL 1 DAY AS TIMESTAMP) AS week_start
  FROM (SELECT *, date AS d FROM raw)
),
feats AS (
  SELECT * FROM read_parquet('{features.as_posix()}/*/*.parquet', hive_partitioning = true)
),
joined AS (
  SELECT imp.*, feats.* EXCLUDE (brand, creative_id), feats.creative_id IS NOT NULL AS matched
  FROM imp LEFT JOIN feats USING (brand, creative_id)
),
agg AS (SELECT week_start, brand, {", ".join(sums)} FROM joined GROUP BY week_start, brand),
weeks AS (
  SELECT unnest(generate_series(min(week_start), max(week_start), INTERVAL 7 DAY)) AS week_start FROM imp
),
grid AS (SELECT week_start, brand FROM weeks CROSS JOIN (SELECT DISTINCT brand FROM imp)),
filled AS (
  SELECT g.week_start, g.brand,
  {filled}
  FROM grid g LEFT JOIN agg a USING (week_start, brand)
)
SELECT *, {", ".join(shares)} FROM filled ORDER BY week_start, brand
"""


@pytest.mark.parametrize("first_day", ["monday", "sunday"])
def test_panel_equals_duckdbs_recomputation(tmp_path: Path, first_day: str) -> None:
    data = mmm_data(seed=11, brands=("acme", "globex", "initech"))
    csv = tmp_path / "raw" / "impressions.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text(data.impressions_csv, encoding="utf-8")
    features_folder = tmp_path / "warehouse" / "creative_features"
    for brand, rows in data.features.groupby("brand"):
        write_part(features_folder / f"brand={brand}" / "part-00000.parquet", rows)

    features = pd.concat(
        [read_table(features_folder / f"brand={b}") for b in ("acme", "globex", "initech")], ignore_index=True
    )
    panel = mmm_panel(load_impressions(csv), features, list(OBJECTS), first_day=first_day).panel
    oracle = duckdb.sql(oracle_sql(csv, features_folder, first_day)).df()
    oracle = oracle[list(panel.columns)]

    assert (oracle["unmatched_impressions"] > 0).any() and (oracle["impressions"] == 0).any()
    assert len(panel) == len(oracle) == 3 * oracle["week_start"].nunique()
    pd.testing.assert_frame_equal(
        panel.astype({"brand": object, "week_start": "datetime64[ns]"}),
        oracle.astype({"brand": object, "week_start": "datetime64[ns]"}),
        check_dtype=False,
        rtol=1e-12,
    )


def test_unmatched_creatives_equal_duckdbs_anti_join(tmp_path: Path) -> None:
    data = mmm_data(seed=5)
    csv = tmp_path / "impressions.csv"
    csv.write_text(data.impressions_csv, encoding="utf-8")
    result = mmm_panel(load_impressions(csv), data.features, list(OBJECTS))
    features = data.features.astype({"brand": object, "creative_id": object})  # noqa: F841 (read by DuckDB)
    oracle = duckdb.sql(
        f"""
        SELECT brand, creative_id, count(*) AS rows, sum(impressions) AS impressions, sum(spend) AS spend,
               CAST(min(date) AS TIMESTAMP) AS first_date, CAST(max(date) AS TIMESTAMP) AS last_date
        FROM read_csv('{csv.as_posix()}', header = true, columns = {{'date': 'DATE', 'brand': 'VARCHAR',
          'creative_id': 'VARCHAR', 'impressions': 'BIGINT', 'spend': 'DOUBLE', 'channel': 'VARCHAR'}})
        ANTI JOIN features USING (brand, creative_id)
        GROUP BY ALL ORDER BY brand, creative_id
        """
    ).df()
    assert result.unmatched["creative_id"].tolist() == ["img/acme_unknown.png", "img/globex_unknown.png"]
    pd.testing.assert_frame_equal(
        result.unmatched.astype({"brand": object, "creative_id": object, "first_date": "datetime64[ns]"}),
        oracle.astype({"brand": object, "creative_id": object, "first_date": "datetime64[ns]"}),
        check_dtype=False,
        rtol=1e-12,
    )
