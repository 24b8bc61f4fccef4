"""The warehouse IO manager: DataFrames as Parquet under `warehouse/<asset>/brand=<b>[/object=<o>]/`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from creative_assets.layout import DataRoot
from creative_assets.partition_keys import split_partition_key
from creative_assets.settings import load_settings
from creative_assets.tables.warehouse import read_table, write_part

SINGLE_FILE = "part-00000.parquet"


@dataclass(frozen=True)
class TableRef:
    """A table an asset wrote itself as Parquet parts (e.g. `detections`); the IO manager only reads it."""

    folder: str  # relative to the data root
    rows: int


def partition_folder(root: DataRoot, asset: str, partition_key: str | None) -> Path:
    """The Hive-partitioned folder of one asset partition."""
    if partition_key is None:
        return root.warehouse(asset)
    if "|" in str(partition_key):
        brand, obj = split_partition_key(partition_key)
        return root.warehouse(asset, brand, obj)
    return root.warehouse(asset, str(partition_key))


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Stores DataFrame outputs as one Parquet file per partition; reads parts written by the asset itself."""

    data_root: str | None = Field(default=None, description="data root; default $CREATIVE_ASSETS_DATA")

    def _root(self) -> DataRoot:
        return DataRoot(Path(self.data_root) if self.data_root else load_settings().data_root)

    def _folder(self, asset_key: dg.AssetKey, partition_key: str | None) -> Path:
        return partition_folder(self._root(), asset_key.path[-1], partition_key)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        """Write a DataFrame atomically; a TableRef is already on disk."""
        if obj is None or isinstance(obj, TableRef):
            return
        if not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}, not a DataFrame"
            )
        key = context.partition_key if context.has_partition_key else None
        folder = self._folder(context.asset_key, key)
        target = folder / SINGLE_FILE
        write_part(target, obj)
        for stale in folder.glob("part-*.parquet"):
            if stale != target:
                stale.unlink()
        context.add_output_metadata({"path": dg.MetadataValue.path(str(target)), "rows": len(obj)})

    def _read(self, asset_key: dg.AssetKey, partition_key: str | None) -> pd.DataFrame | None:
        folder = self._folder(asset_key, partition_key)
        if not any(folder.glob("part-*.parquet")):
            return None
        return read_table(folder)

    def load_input(self, context: dg.InputContext) -> object:
        """One partition → DataFrame; several (fan-in) → dict keyed by partition key, missing ones skipped."""
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            df = self._read(asset_key, None)
            if df is None:
                raise FileNotFoundError(f"{asset_key.to_user_string()} has not been materialised")
            return df
        keys = list(context.asset_partition_keys)
        many = len(keys) != 1 or context.definition_metadata.get("as_dict", False)
        if not many:
            df = self._read(asset_key, keys[0])
            if df is None:
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} partition {keys[0]} has not been materialised"
                )
            return df
        out: dict[str, pd.DataFrame] = {}
        missing = []
        for key in keys:
            df = self._read(asset_key, key)
            if df is None:
                missing.append(str(key))
            else:
                out[str(key)] = df
        if missing:
            context.log.info(f"{asset_key.to_user_string()}: not materialised yet for {', '.join(missing)}")
        return out
