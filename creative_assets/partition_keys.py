"""Partition keys without settings: the brand dimension and `brand|object` key helpers (reads no environment).

The object dimension needs the settings' object list, so it lives in `partitions.py`; modules that only name or
split keys (IO managers, sensors, the CLI) import from here and load nothing when imported.
"""

from __future__ import annotations

import dagster as dg

BRAND_PARTITIONS_NAME = "brand"

brand_partitions = dg.DynamicPartitionsDefinition(name=BRAND_PARTITIONS_NAME)


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
