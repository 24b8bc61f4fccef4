"""Jobs: one per partitions definition (a run cannot mix them), used by the sensor, backfills and the CLI."""

from __future__ import annotations

import dagster as dg

INGEST_ASSETS = ["creative_manifest", "video_frames", "labels"]
TRAIN_ASSETS = ["coco_datasets", "grid_search", "chosen_model", "optimal_thresholds"]
DETECT_ASSETS = ["detections", "creative_features", "mmm_features", "mmm_panel", "mmm_unmatched_creatives"]

# Training and detection ops carry this tag; the executor runs at most one at a time so a step never
# oversubscribes the CPU cores or the single GPU. Raise the limit on a multi-GPU machine.
ACCELERATOR_TAG = "creative_assets/accelerator"


def executor(max_concurrent: int = 2, accelerator_slots: int = 1) -> dg.ExecutorDefinition:
    """The multiprocess executor with a cap on concurrent training/detection steps."""
    return dg.multiprocess_executor.configured(
        {
            "max_concurrent": max_concurrent,
            "tag_concurrency_limits": [{"key": ACCELERATOR_TAG, "value": "1", "limit": accelerator_slots}],
        }
    )


ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(*INGEST_ASSETS),
    description="Scan creatives, extract video frames and resolve labels for one brand.",
)
train_job = dg.define_asset_job(
    "train_job",
    selection=dg.AssetSelection.assets(*TRAIN_ASSETS),
    tags={ACCELERATOR_TAG: "1"},
    description="COCO datasets, grid search, chosen model and thresholds for one brand × object.",
)
detect_job = dg.define_asset_job(
    "detect_job",
    selection=dg.AssetSelection.assets(*DETECT_ASSETS),
    tags={ACCELERATOR_TAG: "1"},
    description="Detections over every creative of a brand, creative features and the MMM panel.",
)
