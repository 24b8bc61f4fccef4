"""Sensors: a new `raw/<brand>/` folder adds the brand partition and asks for its ingestion; changed raw files
record new data versions of the raw source assets, which declarative automation follows."""

from __future__ import annotations

import dagster as dg

from creative_assets.jobs import ingest_job
from creative_assets.layout import DataRoot
from creative_assets.partition_keys import BRAND_PARTITIONS_NAME, brand_partitions
from creative_assets.raw_versions import brand_versions, impressions_version
from creative_assets.settings import load_settings

# The tag Dagster reads an observation's data version from (what `observable_source_asset` writes).
DATA_VERSION_TAG = "dagster/data_version"


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


def current_raw_versions(root: DataRoot, brands: list[str]) -> dict[tuple[str, str | None], str]:
    """(source asset, partition) → data version of the raw files now; creatives that cannot be seen are left
    out (absence is not removal)."""
    out: dict[tuple[str, str | None], str] = {("raw_impressions", None): impressions_version(root)}
    for brand in brands:
        versions = brand_versions(root, brand)
        if versions.creatives is not None:
            out[("raw_creatives", brand)] = versions.creatives
        out[("raw_labels", brand)] = versions.labels
    return out


def recorded_version(instance: dg.DagsterInstance, asset: str, partition: str | None) -> str | None:
    """The data version last recorded for a raw source asset (partition), or None."""
    record = instance.get_latest_data_version_record(
        dg.AssetKey(asset), is_source=True, partition_key=partition
    )
    if record is None:
        return None
    event = record.asset_observation or record.asset_materialization
    return (event.tags or {}).get(DATA_VERSION_TAG) if event is not None else None


def raw_observations(
    instance: dg.DagsterInstance, root: DataRoot, brands: list[str]
) -> list[dg.AssetObservation]:
    """Observations for the raw sources whose data version differs from the one recorded last."""
    return [
        dg.AssetObservation(asset_key=asset, partition=partition, tags={DATA_VERSION_TAG: version})
        for (asset, partition), version in current_raw_versions(root, brands).items()
        if recorded_version(instance, asset, partition) != version
    ]


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def raw_files_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Records new data versions of raw_creatives, raw_labels and raw_impressions when their files change."""
    root = DataRoot(load_settings().data_root)
    brands = list(context.instance.get_dynamic_partitions(BRAND_PARTITIONS_NAME))
    changed = raw_observations(context.instance, root, brands)
    if not changed:
        return dg.SkipReason(f"no raw file changed for {len(brands)} brands")
    return dg.SensorResult(asset_events=changed)
