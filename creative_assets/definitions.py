"""The code location: one Definitions with every asset, check, resource, sensor and job."""

from __future__ import annotations

import dagster as dg

from creative_assets.assets import datasets, detection, ingest, tables, training
from creative_assets.jobs import detect_job, executor, ingest_job, train_job
from creative_assets.resources.model_store import LocalModelStore
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import WarehouseIOManager
from creative_assets.sensors import brand_folder_sensor

RESOURCES = {
    "local": {
        "settings": SettingsResource(),
        "warehouse_io_manager": WarehouseIOManager(),
        "model_store": LocalModelStore(),
    },
}

all_assets = dg.load_assets_from_modules([ingest, datasets, training, detection, tables])

defs = dg.Definitions(
    assets=all_assets,
    resources=RESOURCES["local"],
    jobs=[ingest_job, train_job, detect_job],
    sensors=[brand_folder_sensor],
    executor=executor(),
)
