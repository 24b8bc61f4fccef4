"""Importing the partition modules reads no settings; the object dimension is built from settings on first use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from creative_assets.partition_keys import brand_object_key, split_partition_key

PROBE = """
import creative_assets.partition_keys, creative_assets.partitions
import creative_assets.resources.warehouse_io_manager, creative_assets.sensors
print("imported")
import creative_assets.partitions as p
p.brand_object_partitions
"""


def test_importing_partitions_and_the_io_manager_reads_no_settings(tmp_path: Path) -> None:
    # A settings file that fails to load: any read of the settings at import would stop the probe there.
    (tmp_path / "creative_assets.yaml").write_text("no_such_key: 1\n")
    env = {**os.environ, "CREATIVE_ASSETS_DATA": str(tmp_path)}

    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )

    assert probe.stdout.splitlines() == ["imported"]
    # ...and the first use of the object dimension does read them
    assert "SettingsError" in probe.stderr and "no_such_key" in probe.stderr


def test_a_brand_object_key_reads_brand_then_object() -> None:
    key = brand_object_key("acme", "logo")
    assert str(key) == "acme|logo"
    assert split_partition_key(key) == split_partition_key("acme|logo") == ("acme", "logo")
    assert split_partition_key(dg.MultiPartitionKey({"object": "logo", "brand": "acme"})) == ("acme", "logo")
