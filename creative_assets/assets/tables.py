"""Tables for analysts: one row per creative, and the weekly panel a marketing-mix model takes."""

import dagster as dg
import pandas as pd

from creative_assets.assets.metadata import preview
from creative_assets.partitions import brand_partitions
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import TableRef
from creative_assets.tables.features import creative_features as build_creative_features
from creative_assets.tables.mmm import load_impressions, weekly_panel
from creative_assets.tables.schemas import check_schema, feature_schema
from creative_assets.tables.warehouse import read_table

OWNERS = ["team:marketing-science"]


def as_frame(root_dir, value) -> pd.DataFrame:
    """A table input as a DataFrame, whether it arrived as one or as a TableRef (in-memory IO managers)."""
    if isinstance(value, TableRef):
        return read_table(root_dir / value.folder)
    return value


@dg.asset(
    partitions_def=brand_partitions,
    group_name="tables",
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    check_specs=[
        dg.AssetCheckSpec("features_schema", asset="creative_features", description="columns and dtypes"),
        dg.AssetCheckSpec(
            "every_creative_covered", asset="creative_features", description="one row per creative"
        ),
    ],
)
def creative_features(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    detections,
    creative_manifest: pd.DataFrame,
    video_frames: pd.DataFrame,
):
    """One row per creative: per object presence, count, max score, area share; for videos early-brand timing."""
    cfg = settings.load()
    root = settings.root()
    table = as_frame(root.root, detections)
    features = build_creative_features(creative_manifest, table, video_frames, cfg.object_names)
    present = {
        f"share_with_{o}": float(features[f"{o}_present"].mean()) if len(features) else 0.0
        for o in cfg.object_names
    }
    yield dg.Output(features, metadata={"creatives": len(features), **present, "preview": preview(features)})
    problems = check_schema(features, feature_schema(cfg.object_names))
    yield dg.AssetCheckResult(
        check_name="features_schema",
        passed=not problems,
        metadata={"problems": "; ".join(problems) or "none"},
    )
    missing = set(creative_manifest["creative_id"]) - set(features["creative_id"])
    yield dg.AssetCheckResult(
        check_name="every_creative_covered",
        passed=not missing and features["creative_id"].is_unique,
        metadata={"creatives": len(creative_manifest), "missing": len(missing)},
    )


@dg.asset(
    partitions_def=brand_partitions,
    group_name="tables",
    kinds={"pandas", "parquet"},
    owners=OWNERS,
    io_manager_key="warehouse_io_manager",
    output_required=False,
)
def mmm_features(
    context: dg.AssetExecutionContext, settings: SettingsResource, creative_features: pd.DataFrame
):
    """Weekly impressions/spend panel with the share on creatives showing each object (for Robyn, Meridian…)."""
    cfg = settings.load()
    root = settings.root()
    brand = context.partition_key
    path = root.impressions()
    if path is None:
        context.log.warning("no raw/impressions.csv or .parquet: mmm_features not materialised")
        yield dg.AssetObservation(
            asset_key=context.asset_key, partition=brand, metadata={"status": "no impressions"}
        )
        return
    impressions = load_impressions(path)
    impressions = impressions[impressions["brand"] == brand]
    if impressions.empty:
        context.log.warning(f"{path.name} has no rows for brand {brand}: mmm_features not materialised")
        yield dg.AssetObservation(
            asset_key=context.asset_key, partition=brand, metadata={"status": f"no impressions for {brand}"}
        )
        return
    by_channel = "channel" in impressions.columns and bool(impressions["channel"].notna().all())
    panel = weekly_panel(impressions, creative_features, cfg.object_names, by_channel=by_channel)
    yield dg.Output(
        panel.panel,
        metadata={
            "weeks": int(panel.panel["week_start"].nunique()),
            "rows": len(panel.panel),
            "by_channel": by_channel,
            "unmatched_creatives": panel.unmatched_count,
            "unmatched_impressions": panel.unmatched_impressions,
            "source": dg.MetadataValue.path(str(path)),
            "preview": preview(panel.panel),
        },
    )
