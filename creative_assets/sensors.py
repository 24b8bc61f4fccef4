"""Sensors: a new `raw/<brand>/` folder adds the brand partition and asks for its ingestion run."""

from __future__ import annotations

import dagster as dg

from creative_assets.jobs import ingest_job
from creative_assets.layout import DataRoot
from creative_assets.partition_keys import BRAND_PARTITIONS_NAME, brand_partitions
from creative_assets.settings import load_settings


def new_brands(data_root: DataRoot, known: set[str]) -> list[str]:
    """Valid brand folders under raw/ that are not partitions yet."""
    return [b for b in data_root.brands() if b not in known]


@dg.sensor(job=ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def brand_folder_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Adds a brand partition when raw/<brand>/ appears and requests its ingestion."""
    root = DataRoot(load_settings().data_root)
    known = set(context.instance.get_dynamic_partitions(BRAND_PARTITIONS_NAME))
    added = new_brands(root, known)
    if not added:
        return dg.SkipReason(f"no new brand folders under {root.root / 'raw'}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=b, run_key=f"ingest-{b}") for b in added],
        dynamic_partitions_requests=[brand_partitions.build_add_request(added)],
    )
