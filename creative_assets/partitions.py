"""Partitions: brand (dynamic, added by the sensor or `creative-assets add-brand`) × object (from settings).

Importing this module reads no settings: `object_partitions` and `brand_object_partitions` are built on first
use (when an asset module declares its partitions), from the settings active then.
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from creative_assets.partition_keys import (
    BRAND_PARTITIONS_NAME,
    brand_object_key,
    brand_partitions,
    split_partition_key,
)

# re-exported; `object_partitions` and `brand_object_partitions` come from __getattr__ below
__all__ = [
    "BRAND_PARTITIONS_NAME",
    "brand_object_key",
    "brand_partitions",
    "object_names",
    "split_partition_key",
]


def object_names() -> list[str]:
    """Object names from the settings active when the code location loads."""
    from creative_assets.settings import load_settings

    return load_settings().object_names


@cache
def _object_partitions() -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(object_names())


@cache
def _brand_object_partitions() -> dg.MultiPartitionsDefinition:
    # Dimensions order by name in multi-partition keys: "acme|logo" is brand|object.
    return dg.MultiPartitionsDefinition({"brand": brand_partitions, "object": _object_partitions()})


def __getattr__(name: str) -> object:
    """`object_partitions` and `brand_object_partitions`, built from the settings on first access."""
    if name == "object_partitions":
        return _object_partitions()
    if name == "brand_object_partitions":
        return _brand_object_partitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
