"""The wide MMM panel (`mmm_panel`), from a hand-made impressions file and features with hand-computed values."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from creative_assets.tables.mmm import (
    ImpressionsError,
    load_impressions,
    mmm_panel,
    panel_grid,
)
from creative_assets.tables.schemas import check_schema, mmm_panel_schema
from creative_assets.tables.warehouse import write_part

OBJECTS = ["logo", "product"]

# Mon 2024-01-01, Mon 01-08 and Mon 01-15 are the three weeks. acme runs in weeks 1 and 3, globex in 2 and 3.
IMPRESSIONS_CSV = """date,brand,creative_id,impressions,spend,channel
2024-01-01,acme,img/a.png,100,10.00,Paid Social
2024-01-02,acme,vid/v.mp4,200,20.50,TV
2024-01-03,acme,vid/late.mp4,100,5.00,TV
2024-01-04,acme,img/gone.png,50,2.50,Paid Social
2024-01-18,acme,vid/empty.mp4,80,8.00,TV
2024-01-09,globex,img/g.png,300,30.00,Paid Social
2024-01-16,globex,img/g.png,10,1.00,TV
"""


def features() -> pd.DataFrame:
    """a.png: logo. v.mp4: logo from 2 s on half the frames, product from 4 s on a quarter.
    late.mp4: logo from 6 s on a fifth of the frames. empty.mp4: no frames sampled. g.png: product.
    img/gone.png has no row (not in the manifest)."""
    rows = [
        # brand, creative_id, media_type, logo (present, 3s, 5s, frame share), product (same)
        ("acme", "img/a.png", "image", (True, False, False, None), (False, False, False, None)),
        ("acme", "vid/v.mp4", "video", (True, True, True, 0.5), (True, False, True, 0.25)),
        ("acme", "vid/late.mp4", "video", (True, False, False, 0.2), (False, False, False, 0.0)),
        ("acme", "vid/empty.mp4", "video", (False, False, False, None), (False, False, False, None)),
        ("globex", "img/g.png", "image", (False, False, False, None), (True, False, False, None)),
    ]
    out: dict[str, list] = {"brand": [], "creative_id": [], "media_type": []}
    for brand, creative, media, *per_object in rows:
        out["brand"].append(brand)
        out["creative_id"].append(creative)
        out["media_type"].append(media)
        for o, (present, first3, first5, share) in zip(OBJECTS, per_object, strict=True):
            out.setdefault(f"{o}_present", []).append(present)
            out.setdefault(f"{o}_in_first_3s", []).append(first3)
            out.setdefault(f"{o}_in_first_5s", []).append(first5)
            out.setdefault(f"{o}_frame_share", []).append(share)
    frame = pd.DataFrame(out).astype({"brand": "string", "creative_id": "string", "media_type": "string"})
    return frame.astype({f"{o}_frame_share": "Float64" for o in OBJECTS})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "impressions.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def impressions(tmp_path: Path) -> pd.DataFrame:
    return load_impressions(write(tmp_path, IMPRESSIONS_CSV))


@pytest.fixture
def panel(impressions: pd.DataFrame) -> pd.DataFrame:
    return mmm_panel(impressions, features(), OBJECTS).panel


def row(panel: pd.DataFrame, week: str, brand: str) -> pd.Series:
    hit = panel[(panel["week_start"] == pd.Timestamp(week)) & (panel["brand"] == brand)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_one_row_per_week_and_brand_on_the_whole_week_grid(panel: pd.DataFrame) -> None:
    keys = list(zip(panel["week_start"].dt.strftime("%m-%d"), panel["brand"], strict=True))
    assert keys == [
        ("01-01", "acme"),
        ("01-01", "globex"),
        ("01-08", "acme"),
        ("01-08", "globex"),
        ("01-15", "acme"),
        ("01-15", "globex"),
    ]
    assert check_schema(panel, mmm_panel_schema(OBJECTS, ["paid_social", "tv"])) == []


def test_weeks_without_impressions_are_explicit_zeros(panel: pd.DataFrame) -> None:
    quiet = row(panel, "2024-01-08", "acme")
    numbers = quiet.drop(["week_start", "brand"])
    assert (numbers == 0).all()
    assert not panel.drop(columns=["week_start", "brand"]).isna().any().any()


def test_channel_media_are_the_weeks_impressions_and_spend(panel: pd.DataFrame) -> None:
    week1 = row(panel, "2024-01-01", "acme")
    assert (week1.impressions, week1.spend) == (450, 38.0)
    assert (week1.impressions_paid_social, week1.spend_paid_social) == (150, 12.5)
    assert (week1.impressions_tv, week1.spend_tv) == (300, 25.5)
    assert row(panel, "2024-01-15", "globex").spend_tv == 1.0


def test_spend_is_split_by_object_and_leaves_unmatched_creatives_out(panel: pd.DataFrame) -> None:
    week1 = row(panel, "2024-01-01", "acme")
    # Paid Social: a.png (logo, 10.00) and gone.png (unmatched, 2.50, in neither half).
    assert (week1.spend_paid_social_logo, week1.spend_paid_social_no_logo) == (10.0, 0.0)
    assert (week1.spend_paid_social_product, week1.spend_paid_social_no_product) == (0.0, 10.0)
    # TV: v.mp4 (logo and product, 20.50) and late.mp4 (logo, 5.00).
    assert (week1.spend_tv_logo, week1.spend_tv_no_logo) == (25.5, 0.0)
    assert (week1.spend_tv_product, week1.spend_tv_no_product) == (20.5, 5.0)
    assert week1.unmatched_spend == 2.5


def test_object_shares_weight_creatives_by_impressions_across_channels(panel: pd.DataFrame) -> None:
    week1 = row(panel, "2024-01-01", "acme")
    assert week1.share_logo == pytest.approx(400 / 450)  # a, v, late of 450 (gone.png counts as not shown)
    assert week1.share_product == pytest.approx(200 / 450)
    assert row(panel, "2024-01-08", "globex").share_product == 1.0


def test_timing_shares_are_shares_of_video_impressions(panel: pd.DataFrame) -> None:
    week1 = row(panel, "2024-01-01", "acme")
    assert week1.video_impressions == 300  # v (200) and late (100)
    assert week1.share_logo_in_first_3s == pytest.approx(200 / 300)
    assert week1.share_logo_in_first_5s == pytest.approx(200 / 300)
    assert week1.share_product_in_first_3s == 0.0
    assert week1.share_product_in_first_5s == pytest.approx(200 / 300)
    assert week1.frame_share_logo == pytest.approx((200 * 0.5 + 100 * 0.2) / 300)
    assert week1.frame_share_product == pytest.approx(200 * 0.25 / 300)


def test_a_video_without_sampled_frames_counts_as_showing_nothing(panel: pd.DataFrame) -> None:
    week3 = row(panel, "2024-01-15", "acme")
    assert week3.video_impressions == 80
    assert (week3.frame_share_logo, week3.share_logo_in_first_5s, week3.spend_tv_no_logo) == (0.0, 0.0, 8.0)


def test_weeks_without_video_have_zero_timing_shares(panel: pd.DataFrame) -> None:
    globex = row(panel, "2024-01-08", "globex")
    assert globex.video_impressions == 0
    assert (globex.share_product_in_first_5s, globex.frame_share_product) == (0.0, 0.0)


def test_unmatched_creatives_are_counted_per_week_and_listed(impressions: pd.DataFrame) -> None:
    result = mmm_panel(impressions, features(), OBJECTS)
    week1 = row(result.panel, "2024-01-01", "acme")
    assert (week1.creatives, week1.unmatched_creatives, week1.unmatched_impressions) == (4, 1, 50)
    assert result.panel["unmatched_impressions"].sum() == 50
    assert result.unmatched.to_dict("records") == [
        {
            "brand": "acme",
            "creative_id": "img/gone.png",
            "rows": 1,
            "impressions": 50,
            "spend": 2.5,
            "first_date": pd.Timestamp("2024-01-04"),
            "last_date": pd.Timestamp("2024-01-04"),
        }
    ]


def test_weeks_can_start_on_sunday(impressions: pd.DataFrame) -> None:
    panel = mmm_panel(impressions, features(), OBJECTS, first_day="sunday").panel
    acme = panel[panel["brand"] == "acme"]
    # Sun 2023-12-31 holds Jan 1–4; Sun 01-14 holds Thu 01-18.
    assert list(acme["week_start"].dt.strftime("%Y-%m-%d")) == ["2023-12-31", "2024-01-07", "2024-01-14"]
    assert acme["impressions"].tolist() == [450, 0, 80]
    assert (panel["week_start"].dt.day_of_week == 6).all()


def test_integer_impressions_stay_integer_and_spend_is_decimal(panel: pd.DataFrame) -> None:
    assert panel["impressions"].dtype == "int64" and panel["impressions_tv"].dtype == "int64"
    assert panel["spend_tv"].dtype == "float64" and panel["share_logo"].dtype == "float64"


def test_fractional_impressions_make_every_impressions_column_decimal(tmp_path: Path) -> None:
    text = IMPRESSIONS_CSV.replace("2024-01-01,acme,img/a.png,100,", "2024-01-01,acme,img/a.png,100.5,")
    panel = mmm_panel(load_impressions(write(tmp_path, text)), features(), OBJECTS).panel
    assert panel["impressions_paid_social"].dtype == "float64"
    assert row(panel, "2024-01-01", "acme").impressions_paid_social == 150.5


def test_channel_names_become_safe_identifiers(tmp_path: Path) -> None:
    text = "date,brand,creative_id,impressions,channel\n2024-01-01,acme,img/a.png,1,Paid Social\n"
    text += "2024-01-01,acme,img/a.png,2,YouTube (pre-roll)\n2024-01-01,acme,img/a.png,3,3rd-party\n"
    grid = panel_grid(load_impressions(write(tmp_path, text)))
    assert grid.channels == {
        "3rd-party": "c3rd_party",
        "Paid Social": "paid_social",
        "YouTube (pre-roll)": "youtube_pre_roll",
    }


def test_channels_named_like_totals_get_their_own_columns(tmp_path: Path) -> None:
    text = "date,brand,creative_id,impressions,spend,channel\n2024-01-01,acme,vid/v.mp4,5,1,Video\n"
    text += "2024-01-01,acme,img/a.png,2,3,unmatched\n"
    week = mmm_panel(load_impressions(write(tmp_path, text)), features(), OBJECTS).panel.iloc[0]
    assert (week.impressions_video, week.video_impressions, week.spend_video_logo) == (5, 5, 1.0)
    assert (week.impressions_unmatched, week.unmatched_impressions, week.spend_unmatched) == (2, 0, 3.0)


def test_channels_that_differ_only_in_punctuation_are_refused(tmp_path: Path) -> None:
    text = "date,brand,creative_id,impressions,channel\n2024-01-01,acme,img/a.png,1,Paid Social\n"
    text += "2024-01-01,acme,img/a.png,2,paid-social\n"
    with pytest.raises(ImpressionsError, match="'Paid Social' and 'paid-social' → paid_social"):
        panel_grid(load_impressions(write(tmp_path, text)))


def test_without_channel_and_spend_columns_there_is_one_channel_and_no_spend(tmp_path: Path) -> None:
    text = "date,brand,creative_id,impressions\n2024-01-01,acme,img/a.png,7\n2024-01-10,acme,vid/v.mp4,3\n"
    panel = mmm_panel(load_impressions(write(tmp_path, text)), features(), OBJECTS).panel
    assert panel["impressions_all"].tolist() == [7, 3]
    spend = [c for c in panel.columns if c.startswith("spend")]
    assert "spend_all_logo" in spend and panel[spend].isna().all().all()


def test_each_brand_on_the_files_grid_equals_all_brands_at_once(impressions: pd.DataFrame) -> None:
    grid = panel_grid(impressions)
    one_by_one = pd.concat(
        [
            mmm_panel(impressions[impressions["brand"] == b], features(), OBJECTS, grid).panel
            for b in ("acme", "globex")
        ]
    )
    together = mmm_panel(impressions, features(), OBJECTS).panel
    expected = together.sort_values(["brand", "week_start"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(one_by_one.reset_index(drop=True), expected)


def test_brand_partitions_read_back_as_one_dataset(impressions: pd.DataFrame, tmp_path: Path) -> None:
    grid = panel_grid(impressions)
    folder = tmp_path / "warehouse" / "mmm_panel"
    for brand in ("acme", "globex"):
        part = mmm_panel(impressions[impressions["brand"] == brand], features(), OBJECTS, grid).panel
        write_part(folder / f"brand={brand}" / "part-00000.parquet", part)

    by_pandas = pd.read_parquet(folder)
    assert len(by_pandas) == 6 and sorted(by_pandas["brand"].astype(str).unique()) == ["acme", "globex"]
    by_arrow = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert by_arrow.num_rows == 6
    pattern = (folder / "*" / "*.parquet").as_posix()
    total = duckdb.sql(
        f"select sum(spend_tv) from read_parquet('{pattern}', hive_partitioning=true)"
    ).fetchall()
    assert total == [(pytest.approx(25.5 + 8.0 + 1.0),)]
    polars = pytest.importorskip("polars")
    by_polars = polars.read_parquet(folder / "**" / "*.parquet", hive_partitioning=True)
    assert by_polars.height == 6 and np.isclose(by_polars["spend"].sum(), 38.0 + 8.0 + 30.0 + 1.0)
