"""Impressions loading and the weekly MMM panel, from hand-made CSV/Parquet files and features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creative_assets.tables.mmm import ImpressionsError, load_impressions, weekly_panel
from creative_assets.tables.schemas import check_schema, impressions_schema, mmm_features_schema

OBJECTS = ["logo", "product"]

# 2024-01-07 is a Sunday (week of Mon 2024-01-01); 2024-01-08 a Monday; nothing in the week of 2024-01-15.
IMPRESSIONS_CSV = """date,brand,creative_id,impressions,spend,channel
2024-01-07,acme,img/a.png,100,10,social
2024-01-07,acme,img/b.png,300,30,tv
2024-01-08,acme,img/a.png,50,5,social
2024-01-09,acme,vid/v.mp4,150,15,tv
2024-01-10,acme,img/gone.png,200,20,social
2024-01-24,acme,img/b.png,40,4,social
"""


def write(tmp_path: Path, text: str, name: str = "impressions.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def features() -> pd.DataFrame:
    """a.png shows the logo; v.mp4 the logo and the product; b.png neither."""
    return pd.DataFrame(
        {
            "brand": pd.array(["acme"] * 3, dtype="string"),
            "creative_id": pd.array(["img/a.png", "img/b.png", "vid/v.mp4"], dtype="string"),
            "logo_present": [True, False, True],
            "product_present": [False, False, True],
        }
    )


@pytest.fixture
def impressions(tmp_path: Path) -> pd.DataFrame:
    return load_impressions(write(tmp_path, IMPRESSIONS_CSV))


def test_load_impressions_types_the_csv(impressions: pd.DataFrame) -> None:
    assert check_schema(impressions, impressions_schema("int64")) == []
    assert impressions["impressions"].sum() == 840 and impressions["spend"].sum() == 84
    assert impressions["date"].iloc[0] == pd.Timestamp("2024-01-07")


def test_load_impressions_reads_parquet_without_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "impressions.parquet"
    pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02"]),
            "brand": ["acme"],
            "creative_id": ["img/a.png"],
            "impressions": [5],
        }
    ).to_parquet(path)
    loaded = load_impressions(path)
    assert loaded["impressions"].tolist() == [5] and loaded["impressions"].dtype == "int64"
    assert loaded["spend"].isna().all() and loaded["channel"].isna().all()


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "date,brand,creative_id,spend\n2024-01-01,acme,a.png,3\n")
    with pytest.raises(ImpressionsError, match="missing required column.*impressions"):
        load_impressions(path)


def test_negative_impressions_are_rejected_with_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "date,brand,creative_id,impressions\n2024-01-01,acme,a.png,3\n2024-01-02,acme,a.png,-1\n"
    )
    with pytest.raises(ImpressionsError, match="'impressions' is negative at lines 3"):
        load_impressions(path)


def test_impressions_that_are_not_numbers_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "date,brand,creative_id,impressions\n2024-01-01,acme,a.png,many\n")
    with pytest.raises(ImpressionsError, match="'impressions' is empty or not a number at lines 2"):
        load_impressions(path)


def test_bad_date_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "date,brand,creative_id,impressions\n2024-01-01,acme,a.png,1\nsoon,acme,a.png,1\n")
    with pytest.raises(ImpressionsError, match="'date' is empty or not a date at lines 3"):
        load_impressions(path)


def test_weeks_start_on_monday_and_shares_weight_by_impressions(impressions: pd.DataFrame) -> None:
    panel = weekly_panel(impressions, features(), OBJECTS, by_channel=False).panel
    first = panel.iloc[0]
    assert first.week_start == pd.Timestamp("2024-01-01")
    assert (first.impressions, first.impressions_logo, first.share_logo) == (400.0, 100.0, 0.25)
    second = panel.iloc[1]
    assert second.week_start == pd.Timestamp("2024-01-08")
    assert (second.impressions, second.impressions_logo, second.impressions_product) == (400.0, 200.0, 150.0)
    assert second.spend_logo == 20.0 and second.share_product == pytest.approx(150 / 400)
    assert (panel["week_start"].dt.day_of_week == 0).all()


def test_weeks_without_impressions_are_zero_rows(impressions: pd.DataFrame) -> None:
    panel = weekly_panel(impressions, features(), OBJECTS, by_channel=False).panel
    assert list(panel["week_start"].dt.strftime("%Y-%m-%d")) == [
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    ]
    gap = panel.iloc[2]
    assert gap.impressions == 0.0 and gap.share_logo == 0.0 and gap.creatives == 0


def test_unknown_creatives_count_in_totals_and_are_listed(impressions: pd.DataFrame) -> None:
    result = weekly_panel(impressions, features(), OBJECTS, by_channel=False)
    assert result.panel["impressions"].sum() == 840.0
    assert result.panel["impressions_unmatched"].sum() == 200.0
    assert result.unmatched_count == 1 and result.unmatched_impressions == 200.0
    assert result.unmatched["creative_id"].tolist() == ["img/gone.png"]


def test_channel_split_gives_a_row_per_week_and_channel(impressions: pd.DataFrame) -> None:
    panel = weekly_panel(impressions, features(), OBJECTS, by_channel=True).panel
    assert check_schema(panel, mmm_features_schema(OBJECTS, by_channel=True)) == []
    week1 = panel[panel["week_start"] == pd.Timestamp("2024-01-08")].set_index("channel")
    assert week1.loc["social", "impressions"] == 250.0 and week1.loc["social", "impressions_logo"] == 50.0
    assert week1.loc["tv", "impressions"] == 150.0 and week1.loc["tv", "share_product"] == 1.0
    assert panel.groupby(["week_start", "channel"]).size().max() == 1


def test_panel_by_channel_needs_a_channel_column(tmp_path: Path) -> None:
    loaded = load_impressions(
        write(tmp_path, "date,brand,creative_id,impressions\n2024-01-01,acme,img/a.png,1\n")
    )
    with pytest.raises(ImpressionsError, match="channel"):
        weekly_panel(loaded, features(), OBJECTS, by_channel=True)


def test_panel_without_spend_has_no_spend_values(tmp_path: Path) -> None:
    loaded = load_impressions(
        write(tmp_path, "date,brand,creative_id,impressions\n2024-01-01,acme,img/a.png,7\n")
    )
    panel = weekly_panel(loaded, features(), OBJECTS).panel
    assert check_schema(panel, mmm_features_schema(OBJECTS)) == []
    assert panel["impressions_logo"].tolist() == [7]
    assert np.isnan(panel["spend"]).all() and np.isnan(panel["spend_logo"]).all()


def test_whole_number_cells_keep_impressions_integer(impressions: pd.DataFrame) -> None:
    panel = weekly_panel(impressions, features(), OBJECTS).panel
    assert impressions["impressions"].dtype == "int64" and panel["impressions"].dtype == "int64"
    assert panel["impressions_logo"].dtype == "int64" and panel["spend"].dtype == "float64"


def test_fractional_impressions_make_the_column_decimal(tmp_path: Path) -> None:
    loaded = load_impressions(
        write(
            tmp_path,
            "date,brand,creative_id,impressions\n2024-01-01,acme,img/a.png,7\n2024-01-02,acme,img/a.png,0.5\n",
        )
    )
    assert loaded["impressions"].dtype == "float64" and loaded["impressions"].tolist() == [7.0, 0.5]
    panel = weekly_panel(loaded, features(), OBJECTS).panel
    assert check_schema(panel, mmm_features_schema(OBJECTS, impressions_dtype="float64")) == []
    assert panel["impressions_logo"].tolist() == [7.5]


def test_a_parquet_float_column_stays_decimal_even_when_whole(tmp_path: Path) -> None:
    path = tmp_path / "impressions.parquet"
    pd.DataFrame(
        {"date": ["2024-01-02"], "brand": ["acme"], "creative_id": ["img/a.png"], "impressions": [5.0]}
    ).to_parquet(path)
    assert load_impressions(path)["impressions"].dtype == "float64"


def test_sunday_weeks_for_the_long_table(impressions: pd.DataFrame) -> None:
    panel = weekly_panel(impressions, features(), OBJECTS, first_day="sunday").panel
    # Sun 2024-01-07 … Sat 01-13 holds every row but the one on Wed 01-24 (week of Sun 01-21).
    assert list(panel["week_start"].dt.strftime("%Y-%m-%d")) == ["2024-01-07", "2024-01-14", "2024-01-21"]
    assert panel["impressions"].tolist() == [800, 0, 40]
    assert (panel["week_start"].dt.day_of_week == 6).all()
