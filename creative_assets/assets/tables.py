"""Tables for analysts: one row per creative, and the weekly panel a marketing-mix model takes."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from creative_assets.assets.declare import table_assets, table_out
from creative_assets.assets.metadata import preview
from creative_assets.layout import DataRoot
from creative_assets.partitions import brand_partitions
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import TableRef
from creative_assets.tables.features import creative_features as build_creative_features
from creative_assets.tables.mmm import load_impressions, panel_grid, weekly_panel
from creative_assets.tables.mmm import mmm_panel as mmm_panel_table
from creative_assets.tables.schemas import check_schema, feature_schema
from creative_assets.tables.warehouse import read_table

OWNERS = ["team:marketing-science"]
KINDS = {"pandas", "parquet"}
asset = table_assets("tables", OWNERS, KINDS)


def as_frame(root_dir, value) -> pd.DataFrame:
    """A table input as a DataFrame, whether it arrived as one or as a TableRef (in-memory IO managers)."""
    if isinstance(value, TableRef):
        return read_table(root_dir / value.folder)
    return value


@asset(
    "creative_features",
    brand_partitions,
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
    # The committed folder is read in batches by the core; only an in-memory run hands over a DataFrame.
    table = root.root / detections.folder if isinstance(detections, TableRef) else detections
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


def _brand_impressions(
    context: dg.AssetExecutionContext, root: DataRoot, what: str
) -> tuple[Path, pd.DataFrame, pd.DataFrame] | str:
    """(file, every brand's impressions, this brand's) — or why there is nothing to build for this brand."""
    brand = context.partition_key
    path = root.impressions()
    if path is None:
        context.log.warning(f"no raw/impressions.csv or .parquet: {what} not materialised")
        return "no impressions"
    impressions = load_impressions(path)
    mine = impressions[impressions["brand"] == brand]
    if mine.empty:
        context.log.warning(f"{path.name} has no rows for brand {brand}: {what} not materialised")
        return f"no impressions for {brand}"
    return path, impressions, mine


@asset(
    "mmm_features",
    brand_partitions,
    deps=["raw_impressions"],
    output_required=False,
)
def mmm_features(
    context: dg.AssetExecutionContext, settings: SettingsResource, creative_features: pd.DataFrame
):
    """Long weekly table: per week × brand [× channel] impressions/spend and the share showing each object."""
    cfg = settings.load()
    found = _brand_impressions(context, settings.root(), "mmm_features")
    if isinstance(found, str):
        yield dg.AssetObservation(
            asset_key=context.asset_key, partition=context.partition_key, metadata={"status": found}
        )
        return
    path, _, impressions = found
    by_channel = bool(impressions["channel"].notna().all())
    panel = weekly_panel(
        impressions, creative_features, cfg.object_names, by_channel=by_channel, first_day=cfg.week_start
    )
    yield dg.Output(
        panel.panel,
        metadata={
            "weeks": int(panel.panel["week_start"].nunique()),
            "rows": len(panel.panel),
            "by_channel": by_channel,
            "week_start": cfg.week_start,
            "unmatched_creatives": panel.unmatched_count,
            "unmatched_impressions": panel.unmatched_impressions,
            "source": dg.MetadataValue.path(str(path)),
            "preview": preview(panel.panel),
        },
    )


def brand_schemas(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Column names and Arrow types of each brand partition's parts under a table's folder."""
    return {
        part.parent.name.partition("=")[2]: [(f.name, str(f.type)) for f in pq.read_schema(part)]
        for part in sorted(folder.glob("brand=*/part-*.parquet"))
    }


@dg.multi_asset(
    partitions_def=brand_partitions,
    group_name="tables",
    deps=["raw_impressions"],
    outs={
        name: table_out(name, OWNERS, KINDS, description, is_required=False)
        for name, description in (
            (
                "mmm_panel",
                "Wide weekly panel for an MMM: one row per week × brand, channel media, object shares.",
            ),
            (
                "mmm_unmatched_creatives",
                "Creatives with impressions but no creative features: what to fix in the join.",
            ),
        )
    },
    check_specs=[
        dg.AssetCheckSpec(
            "one_schema_across_brands",
            asset="mmm_panel",
            description="same columns and types as the other brands' partitions (one dataset)",
        )
    ],
)
def mmm_panel(context: dg.AssetExecutionContext, settings: SettingsResource, creative_features: pd.DataFrame):
    """The wide MMM panel of one brand on the week grid and channels of the whole impressions file."""
    cfg = settings.load()
    root = settings.root()
    found = _brand_impressions(context, root, "mmm_panel")
    if isinstance(found, str):
        for key in ("mmm_panel", "mmm_unmatched_creatives"):
            yield dg.AssetObservation(
                asset_key=key, partition=context.partition_key, metadata={"status": found}
            )
        # Nothing written for this brand, so nothing it could make inconsistent (the check's output is required).
        yield dg.AssetCheckResult(
            check_name="one_schema_across_brands",
            asset_key="mmm_panel",
            passed=True,
            metadata={"status": found},
        )
        return
    path, every_brand, impressions = found
    # The grid comes from every brand's rows so the brand partitions stack into one balanced panel.
    grid = panel_grid(every_brand, cfg.week_start)
    result = mmm_panel_table(impressions, creative_features, cfg.object_names, grid, cfg.week_start)
    panel = result.panel
    yield dg.Output(
        panel,
        output_name="mmm_panel",
        metadata={
            "weeks": len(grid.weeks),
            "first_week": str(grid.weeks[0].date()),
            "last_week": str(grid.weeks[-1].date()),
            "week_start": cfg.week_start,
            "channels": ", ".join(grid.channels.values()),
            "columns": len(panel.columns),
            "unmatched_creatives": result.unmatched_count,
            "unmatched_impressions": result.unmatched_impressions,
            "source": dg.MetadataValue.path(str(path)),
            "preview": preview(panel),
        },
    )
    yield dg.Output(
        result.unmatched,
        output_name="mmm_unmatched_creatives",
        metadata={"creatives": result.unmatched_count, "preview": preview(result.unmatched)},
    )
    # The IO manager has written this brand's part by now: compare the files as readers will see them.
    schemas = brand_schemas(root.warehouse("mmm_panel"))
    mine = schemas.get(context.partition_key)
    differ = sorted(b for b, cols in schemas.items() if cols != mine)
    yield dg.AssetCheckResult(
        check_name="one_schema_across_brands",
        asset_key="mmm_panel",
        passed=not differ,
        metadata={
            "differing_brands": ", ".join(differ) or "none",
            "fix": "rematerialise mmm_panel for every brand after impressions gain a channel or change type",
        },
    )
