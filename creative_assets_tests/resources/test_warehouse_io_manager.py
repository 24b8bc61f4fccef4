from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from creative_assets.partitions import brand_object_partitions, brand_partitions
from creative_assets.resources.warehouse_io_manager import WarehouseIOManager

brands = dg.StaticPartitionsDefinition(["acme", "globex"])


@dg.asset(partitions_def=brands, io_manager_key="warehouse_io_manager")
def per_brand(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return pd.DataFrame({"brand": [context.partition_key], "n": [len(context.partition_key)]})


@dg.asset(
    ins={"per_brand": dg.AssetIn(partition_mapping=dg.AllPartitionMapping(), metadata={"as_dict": True})},
    io_manager_key="warehouse_io_manager",
)
def all_brands(per_brand: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([per_brand[k] for k in sorted(per_brand)], ignore_index=True)


def test_dataframe_lands_in_a_hive_partition_folder(tmp_path: Path):
    io = WarehouseIOManager(data_root=str(tmp_path))
    result = dg.materialize([per_brand], partition_key="acme", resources={"warehouse_io_manager": io})
    assert result.success
    file = tmp_path / "warehouse/per_brand/brand=acme/part-00000.parquet"
    assert pq.read_table(file).column_names == ["n"]  # the partition column lives in the folder name
    table = pd.read_parquet(tmp_path / "warehouse/per_brand")  # how analysts read it
    assert table["brand"].astype(str).tolist() == ["acme"] and table["n"].tolist() == [4]


def test_a_partition_column_that_disagrees_with_its_folder_is_refused(tmp_path: Path):
    from creative_assets.tables.warehouse import write_part

    with pytest.raises(ValueError, match="the folder says 'acme'"):
        write_part(tmp_path / "brand=acme/part-00000.parquet", pd.DataFrame({"brand": ["globex"]}))


def test_fan_in_reads_every_materialised_partition_and_skips_missing(tmp_path: Path):
    io = WarehouseIOManager(data_root=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize(
        [per_brand], partition_key="globex", resources={"warehouse_io_manager": io}, instance=instance
    )
    result = dg.materialize(
        [per_brand, all_brands],
        selection=[all_brands],
        resources={"warehouse_io_manager": io},
        instance=instance,
    )
    assert result.success
    out = pd.read_parquet(tmp_path / "warehouse/all_brands/part-00000.parquet")
    assert out["brand"].tolist() == ["globex"]


def test_rematerialising_replaces_the_file_and_leaves_no_temporaries(tmp_path: Path):
    io = WarehouseIOManager(data_root=str(tmp_path))
    for _ in range(2):
        dg.materialize([per_brand], partition_key="acme", resources={"warehouse_io_manager": io})
    folder = tmp_path / "warehouse/per_brand/brand=acme"
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.parquet"]


def test_multi_partition_keys_order_brand_before_object():
    key = dg.MultiPartitionKey({"object": "logo", "brand": "acme"})
    assert str(key) == "acme|logo"
    assert brand_object_partitions.partitions_defs[0].name == "brand"
    assert brand_partitions.name == "brand"
