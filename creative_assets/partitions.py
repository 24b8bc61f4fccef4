"""Partitions: brand (dynamic, added by the sensor or `creative-assets add-brand`) × object (from settings)."""

from __future__ import annotations

import dagster as dg

from creative_assets.settings import load_settings

BRAND_PARTITIONS_NAME = "brand"

brand_partitions = dg.DynamicPartitionsDefinition(name=BRAND_PARTITIONS_NAME)


def object_names() -> list[str]:
    """Object names from the settings active when the code location loads."""
    return load_settings().object_names


object_partitions = dg.StaticPartitionsDefinition(object_names())

# Dimensions order by name in multi-partition keys: "acme|logo" is brand|object.
brand_object_partitions = dg.MultiPartitionsDefinition(
    {"brand": brand_partitions, "object": object_partitions}
)


def brand_object_key(brand: str, object_name: str) -> str:
    """The multi-partition key string for (brand, object), e.g. `acme|logo`."""
    return dg.MultiPartitionKey({"brand": brand, "object": object_name})


def split_partition_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(brand, object) of a brand × object partition key."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["brand"], dims["object"]
    brand, _, obj = str(key).partition("|")
    return brand, obj
