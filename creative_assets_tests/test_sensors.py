from pathlib import Path

import dagster as dg
import pytest

from creative_assets.partitions import BRAND_PARTITIONS_NAME
from creative_assets.sensors import brand_folder_sensor


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CREATIVE_ASSETS_DATA", str(tmp_path))
    monkeypatch.setenv("CREATIVE_ASSETS_PROFILE", "smoke")
    return tmp_path


def test_new_brand_folder_adds_partition_and_requests_ingestion(data_root: Path):
    (data_root / "raw/acme/creatives").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        result = brand_folder_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SensorResult)
        assert [r.partition_key for r in result.run_requests] == ["acme"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["acme"]


def test_known_brands_are_skipped(data_root: Path):
    (data_root / "raw/acme").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, ["acme"])
        result = brand_folder_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SkipReason)


def test_folders_with_invalid_brand_names_are_ignored(data_root: Path):
    (data_root / "raw/Not A Brand").mkdir(parents=True)
    (data_root / "raw/globex").mkdir(parents=True)
    with dg.instance_for_test() as instance:
        result = brand_folder_sensor(dg.build_sensor_context(instance=instance))
        assert [r.partition_key for r in result.run_requests] == ["globex"]
