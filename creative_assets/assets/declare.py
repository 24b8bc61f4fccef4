"""How this project declares a warehouse table asset, in one place.

Every table asset is written by the warehouse IO manager, owned by a team, in its module's group, and carries
the code version `version.ASSET_CODE_VERSIONS` gives its name. A module binds its group, owners and kinds once
(`table_assets(...)`) and declares each asset with what is its own: name, partitions, inputs, checks, tags.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from creative_assets.version import ASSET_CODE_VERSIONS

WAREHOUSE_IO_MANAGER = "warehouse_io_manager"


def _shared(name: str, owners: list[str], kinds: set[str]) -> dict[str, Any]:
    return {
        "io_manager_key": WAREHOUSE_IO_MANAGER,
        "owners": owners,
        "kinds": kinds,
        "code_version": ASSET_CODE_VERSIONS[name],
    }


def table_assets(group: str, owners: list[str], kinds: set[str]) -> Callable[..., Any]:
    """A decorator factory for the table assets of one module: `asset(name, partitions_def, **dg.asset
    arguments)`; `kinds` may be overridden per asset."""

    def asset(name: str, partitions_def: dg.PartitionsDefinition, **kwargs: Any) -> Any:
        shared = _shared(name, owners, kwargs.pop("kinds", kinds))
        return dg.asset(name=name, group_name=group, partitions_def=partitions_def, **shared, **kwargs)

    return asset


def table_out(name: str, owners: list[str], kinds: set[str], description: str, **kwargs: Any) -> dg.AssetOut:
    """One output of a multi-asset that writes a warehouse table."""
    return dg.AssetOut(description=description, **_shared(name, owners, kinds), **kwargs)
