"""The code location: one Definitions with every asset, check, resource, sensor and job."""

from __future__ import annotations

import dagster as dg

from creative_assets.assets import datasets, detection, ingest, labelling, raw, tables, training
from creative_assets.automation import automation_sensor, conditions, with_automation
from creative_assets.jobs import detect_job, executor, ingest_job, train_job
from creative_assets.resources.model_store import LocalModelStore
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import WarehouseIOManager
from creative_assets.selection_parser import warn_if_selection_parser_broken
from creative_assets.sensors import brand_folder_sensor, raw_files_sensor
from creative_assets.settings import load_settings

# Said where the code location loads, so `dagster … --select` users read the fix beside Dagster's error.
warn_if_selection_parser_broken()


def local_resources(data_root: str | None = None, profile: str | None = None) -> dict[str, object]:
    """Settings, warehouse and model store on the local file system (None = from the environment)."""
    return {
        "settings": SettingsResource(data_root=data_root, profile=profile),
        "warehouse_io_manager": WarehouseIOManager(data_root=data_root),
        "model_store": LocalModelStore(data_root=data_root),
    }


# One entry per environment; a production entry would swap the model store for an object store.
RESOURCES = {"local": local_resources()}

all_assets = dg.load_assets_from_modules([raw, ingest, datasets, training, detection, tables, labelling])


def build_definitions(train_automation: bool, resources: dict[str, object] | None = None) -> dg.Definitions:
    """The code location; `train_automation` (setting automation.train) lets automation start training."""
    return dg.Definitions(
        assets=with_automation(all_assets, conditions(train=train_automation)),
        resources=resources or RESOURCES["local"],
        jobs=[ingest_job, train_job, detect_job],
        sensors=[brand_folder_sensor, raw_files_sensor, automation_sensor()],
        executor=executor(),
    )


defs = build_definitions(train_automation=load_settings().automation.train)
