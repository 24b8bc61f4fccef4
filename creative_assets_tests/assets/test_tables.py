"""The MMM table assets materialised with Dagster into a temp data root, features given in memory."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from creative_assets.assets.tables import mmm_features, mmm_panel
from creative_assets.partitions import BRAND_PARTITIONS_NAME, brand_partitions
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import WarehouseIOManager
from creative_assets.tables.schemas import unmatched_schema
from creative_assets_tests.support.mmm_data import mmm_data

DATA = mmm_data(seed=3)
SETTINGS = "objects:\n  - {name: logo}\n  - {name: product}\n"


@dg.asset(partitions_def=brand_partitions, io_manager_key="warehouse_io_manager")
def creative_features(context: dg.AssetExecutionContext) -> pd.DataFrame:
    """The brand's rows of the generated features (in place of the detection stage)."""
    return DATA.features[DATA.features["brand"] == context.partition_key].reset_index(drop=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "impressions.csv").write_text(DATA.impressions_csv, encoding="utf-8")
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)
    return tmp_path


def run(root: Path, brand: str, instance: dg.DagsterInstance, **overrides) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, [brand])
    return dg.materialize(
        [creative_features, mmm_features, mmm_panel],
        partition_key=brand,
        instance=instance,
        resources={
            "settings": SettingsResource(data_root=str(root), profile="smoke", overrides=overrides),
            "warehouse_io_manager": WarehouseIOManager(data_root=str(root)),
        },
    )


def test_each_brand_partition_joins_one_balanced_panel(root: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for brand in ("acme", "globex"):
        result = run(root, brand, instance)
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert [(c.check_name, c.passed) for c in checks] == [("one_schema_across_brands", True)]

    panel = pd.read_parquet(root / "warehouse" / "mmm_panel")
    weeks = panel.groupby("brand", observed=True)["week_start"].apply(list)
    assert weeks["acme"] == weeks["globex"]
    assert panel.groupby(["week_start", "brand"], observed=True).size().max() == 1
    assert {"spend_paid_social", "spend_tv_logo", "spend_search_no_product", "share_logo"} <= set(
        panel.columns
    )
    assert (root / "warehouse" / "mmm_features" / "brand=acme" / "part-00000.parquet").is_file()


def test_unknown_creatives_land_in_their_own_table(root: Path) -> None:
    run(root, "acme", dg.DagsterInstance.ephemeral())
    unmatched = pd.read_parquet(root / "warehouse" / "mmm_unmatched_creatives")
    assert unmatched["creative_id"].tolist() == ["img/acme_unknown.png"]


def test_with_every_creative_known_the_unmatched_table_is_a_zero_row_file(root: Path) -> None:
    csv = root / "raw" / "impressions.csv"
    csv.write_text("".join(line for line in csv.read_text().splitlines(True) if "unknown" not in line))
    run(root, "globex", dg.DagsterInstance.ephemeral())
    part = root / "warehouse" / "mmm_unmatched_creatives" / "brand=globex" / "part-00000.parquet"
    table = pq.read_table(part)
    assert table.num_rows == 0
    assert table.column_names == [c for c in unmatched_schema().columns if c != "brand"]


def test_week_start_setting_reaches_the_panel(root: Path) -> None:
    run(root, "acme", dg.DagsterInstance.ephemeral(), week_start="sunday")
    panel = pd.read_parquet(root / "warehouse" / "mmm_panel")
    assert (panel["week_start"].dt.day_of_week == 6).all()


def test_another_brand_written_with_other_columns_fails_the_check(root: Path) -> None:
    stale = root / "warehouse" / "mmm_panel" / "brand=globex" / "part-00000.parquet"
    stale.parent.mkdir(parents=True)
    pd.DataFrame({"week_start": pd.to_datetime(["2024-01-01"]), "impressions": [1]}).to_parquet(stale)
    result = run(root, "acme", dg.DagsterInstance.ephemeral())
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["differing_brands"].value == "globex"


def test_without_an_impressions_file_nothing_is_written(root: Path) -> None:
    (root / "raw" / "impressions.csv").unlink()
    result = run(root, "acme", dg.DagsterInstance.ephemeral())
    assert result.success
    assert not (root / "warehouse" / "mmm_panel").exists()
    assert not (root / "warehouse" / "mmm_unmatched_creatives").exists()
