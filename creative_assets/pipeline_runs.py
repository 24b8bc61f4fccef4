"""Materialising the graph from Python (the CLI's `demo`): one run per partition, stage by stage."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import pandas as pd

from creative_assets.jobs import DETECT_ASSETS, INGEST_ASSETS, TRAIN_ASSETS
from creative_assets.layout import DataRoot
from creative_assets.partition_keys import BRAND_PARTITIONS_NAME, brand_object_key
from creative_assets.settings import Settings
from creative_assets.tables.warehouse import read_table


def _materialize(
    instance: dg.DagsterInstance, selection: Sequence[str], partition_key: str, cfg: Settings
) -> None:
    from creative_assets.definitions import all_assets, local_resources

    resources = local_resources(str(cfg.data_root), cfg.profile)
    # An AssetSelection, never strings: strings go through Dagster's ANTLR-generated selection parser,
    # which breaks where another package pins an older ANTLR runtime (see README: detectron2).
    result = dg.materialize(
        all_assets,
        selection=dg.AssetSelection.assets(*selection),
        partition_key=partition_key,
        instance=instance,
        resources=resources,
    )
    if not result.success:
        raise RuntimeError(f"run for {partition_key} ({', '.join(selection)}) failed; see the Dagster logs")


def ensure_brands(instance: dg.DagsterInstance, brands: Sequence[str]) -> None:
    """Add brand partitions that the instance does not know yet."""
    missing = [b for b in brands if not instance.has_dynamic_partition(BRAND_PARTITIONS_NAME, b)]
    if missing:
        instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, missing)


def record_raw_versions(instance: dg.DagsterInstance, cfg: Settings, brands: Sequence[str]) -> int:
    """Record the raw files' data versions before reading them, as the raw-files sensor would: the assets
    built next then count as up to date, and `dagster dev` started later does not rerun them."""
    from creative_assets.sensors import raw_observations

    observations = raw_observations(instance, DataRoot(cfg.data_root), list(brands))
    for observation in observations:
        instance.report_runless_asset_event(observation)
    return len(observations)


def run_ingest(instance: dg.DagsterInstance, cfg: Settings, brands: Sequence[str]) -> None:
    """Manifest, frames and labels of each brand."""
    ensure_brands(instance, brands)
    record_raw_versions(instance, cfg, brands)
    for brand in brands:
        _materialize(instance, INGEST_ASSETS, brand, cfg)


def run_training(instance: dg.DagsterInstance, cfg: Settings, brands: Sequence[str]) -> None:
    """Datasets, grid, chosen model and thresholds of every brand × object."""
    for brand in brands:
        for obj in cfg.object_names:
            _materialize(instance, TRAIN_ASSETS, brand_object_key(brand, obj), cfg)


def run_detection_stage(instance: dg.DagsterInstance, cfg: Settings, brands: Sequence[str]) -> None:
    """Detections, creative features and the MMM panel of each brand."""
    for brand in brands:
        _materialize(instance, DETECT_ASSETS, brand, cfg)


def run_retrain(instance: dg.DagsterInstance, cfg: Settings, brand: str, object_name: str) -> None:
    """Re-read the brand's labels (new files in raw/<brand>/labels/), then rebuild the pair's dataset, grid,
    chosen model and thresholds."""
    ensure_brands(instance, [brand])
    record_raw_versions(instance, cfg, [brand])
    _materialize(instance, ["labels"], brand, cfg)
    _materialize(instance, TRAIN_ASSETS, brand_object_key(brand, object_name), cfg)


def run_everything(instance: dg.DagsterInstance, cfg: Settings, brands: Sequence[str]) -> None:
    """The whole graph for `brands`, in dependency order."""
    run_ingest(instance, cfg, brands)
    run_training(instance, cfg, brands)
    run_detection_stage(instance, cfg, brands)


def summary_table(cfg: Settings, brands: Sequence[str]) -> pd.DataFrame:
    """Per brand × object: chosen params, accuracies, threshold, baselines — read back from the warehouse."""
    root = DataRoot(cfg.data_root)
    first = int(round(cfg.confidences[0] * 100))
    rows = []
    for brand in brands:
        for obj in cfg.object_names:
            chosen_dir = root.warehouse("chosen_model", brand, obj)
            if not chosen_dir.is_dir():
                continue
            chosen = read_table(chosen_dir).iloc[0]
            row = {"brand": brand, "object": obj, "status": chosen["status"]}
            if chosen["status"] == "model":
                grid = read_table(root.warehouse("grid_search", brand, obj))
                trial = grid.loc[grid["trial"] == chosen["trial"]].iloc[0]
                row.update(
                    {
                        "MAX_ITER": int(chosen["max_iter"]),
                        "ROI_BSPI": int(chosen["batch_size_per_image"]),
                        f"valid_acc@{first}": float(trial[f"accuracy_{first}"]),
                        "always_absent": float(chosen["always_absent_accuracy"]),
                        "haar": chosen["haar_accuracy"],
                        "test_acc": float(chosen["test_accuracy"]),
                        "test_always_absent": float(chosen["test_always_absent_accuracy"]),
                        "beats_baseline": "yes" if bool(chosen["beats_baseline"]) else "NO",
                        "verdict": str(chosen["baseline_verdict"]),
                    }
                )
                th_dir = root.warehouse("optimal_thresholds", brand, obj)
                if th_dir.is_dir():
                    th = read_table(th_dir)
                    if len(th):
                        t = th.iloc[0]
                        row.update(
                            {
                                "threshold": float(t["threshold"]),
                                "valid_acc@thr": float(t["valid_accuracy"]),
                                "test_acc@thr": float(t["test_accuracy"]),
                            }
                        )
            rows.append(row)
    return pd.DataFrame(rows)


def baseline_warnings(table: pd.DataFrame) -> list[str]:
    """One sentence per chosen model that does not beat "always absent" on the held-out test split."""
    if "beats_baseline" not in table.columns:
        return []
    failing = table[table["beats_baseline"] == "NO"]
    return [f"\n{r.brand}|{r.object}: the chosen model {r.verdict}" for r in failing.itertuples()]


def print_summary(cfg: Settings, brands: Sequence[str]) -> None:
    """Print the summary table and where the Parquet tables are."""
    root = DataRoot(cfg.data_root)
    table = summary_table(cfg, brands)
    with pd.option_context(
        "display.max_columns", 30, "display.width", 200, "display.float_format", "{:.3f}".format
    ):
        shown = table.drop(columns="verdict", errors="ignore")
        print(shown.to_string(index=False) if len(table) else "(no models)")
    for line in baseline_warnings(table):
        print(line)
    print("\nParquet tables (Hive-partitioned by brand):")
    for asset in ("creative_manifest", "video_frames", "detections", "creative_features", "mmm_features",
                  "mmm_panel", "mmm_unmatched_creatives", "grid_search", "chosen_model", "optimal_thresholds"):  # fmt: skip
        folder = root.warehouse(asset)
        if folder.is_dir():
            print(f"  {asset:<24} {folder}")
