"""Labelling: what to label next per brand × object, exported as a task for the labelling tools."""

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd

from creative_assets.assets.declare import table_assets
from creative_assets.assets.metadata import preview
from creative_assets.labels.export import export_task, validate_task
from creative_assets.labels.queue import (
    LABELLING_QUEUE,
    NO_FRAME,
    brand_images,
    frame_keys,
    impression_weights,
)
from creative_assets.labels.queue import labelling_queue as build_queue
from creative_assets.layout import DataRoot, PathEscapeError
from creative_assets.media.decode import ImageDecodeError, decode_file
from creative_assets.partitions import brand_object_partitions, split_partition_key
from creative_assets.reporting.plots import detections_overlay, image_grid, markdown_image
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import TableRef
from creative_assets.tables.mmm import load_impressions
from creative_assets.tables.warehouse import read_detections

OWNERS = ["team:computer-vision"]
asset = table_assets("labelling", OWNERS, {"pandas", "parquet", "coco"})
GRID_ITEMS = 8
_BRAND = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="brand")


def _detections_frame(root: DataRoot, value) -> pd.DataFrame:
    """The detections input as a DataFrame, whether it arrived as one or as the asset's TableRef."""
    if isinstance(value, TableRef):
        return read_detections(root.root / value.folder)
    return value


def _top_items_grid(
    root: DataRoot, queue: pd.DataFrame, detections: pd.DataFrame, max_megapixels: float
) -> str | None:
    """The first queued images with every above-threshold box the brand's models drew, as markdown."""
    import cv2

    shown = detections[detections["above_threshold"].astype(bool)]
    frame = frame_keys(shown["frame_index"])
    images, captions = [], []
    for row in queue.head(GRID_ITEMS).itertuples(index=False):
        try:  # the one decoder every stage uses (pixel budget, EXIF orientation, no crash on odd files)
            decoded = decode_file(root.resolve_inside(str(row.image_path)), max_megapixels)
        except (ImageDecodeError, PathEscapeError):
            continue
        index = NO_FRAME if pd.isna(row.frame_index) else int(row.frame_index)
        boxes = shown[(shown["creative_id"] == row.creative_id) & (frame == index)]
        scale = [decoded.scale_x, decoded.scale_y, decoded.scale_x, decoded.scale_y]
        png = detections_overlay(
            decoded.image,
            boxes[["x_min", "y_min", "x_max", "y_max"]].to_numpy() / scale,
            boxes["class_name"].astype(str).tolist(),
            boxes["score"].to_numpy(),
        )
        images.append(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
        where = "" if index < 0 else f" f{index}"
        captions.append(
            f"#{row.rank} u={row.uncertainty:.2f} w={row.impression_weight:.3f} {row.creative_id}{where}"
        )
    if not images:
        return None
    return markdown_image(
        image_grid(images, captions, ncols=4), "top of the labelling queue with the model's boxes"
    )


@asset(
    "labelling_queue",
    brand_object_partitions,
    ins={
        "detections": dg.AssetIn(partition_mapping=_BRAND),
        "creative_manifest": dg.AssetIn(partition_mapping=_BRAND),
        "video_frames": dg.AssetIn(partition_mapping=_BRAND),
        "labels": dg.AssetIn(partition_mapping=_BRAND),
    },
)
def labelling_queue(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    detections,
    optimal_thresholds: pd.DataFrame,
    creative_manifest: pd.DataFrame,
    video_frames: pd.DataFrame,
    labels: pd.DataFrame,
) -> dg.Output:
    """Unlabelled images and frames ranked by uncertainty × impression share; exports a labelling task."""
    cfg = settings.load()
    root = settings.root()
    brand, object_name = split_partition_key(context.partition_key)
    if optimal_thresholds.empty:
        context.log.info(f"{brand}|{object_name}: no model, nothing to queue")
        return dg.Output(LABELLING_QUEUE.empty(), metadata={"status": "no model", "queued": 0})
    model_id = str(optimal_thresholds["model_id"].iloc[0])
    thresholds = {str(r.class_name): float(r.threshold) for r in optimal_thresholds.itertuples()}
    all_detections = _detections_frame(root, detections)
    ours = all_detections[all_detections["object"] == object_name]
    detected_by = sorted(set(ours["model_id"].astype(str)))
    images = brand_images(creative_manifest, video_frames)
    path = root.impressions()
    impressions = None
    if path is not None:
        table = load_impressions(path)
        impressions = table[table["brand"] == brand]
    weights, weighting = impression_weights(impressions, images["creative_id"].astype(str).unique())
    labelled = set(labels["image_path"].astype(str))
    queue = build_queue(
        brand, object_name, images, ours, thresholds, labelled, weights,
        size=cfg.labelling.queue_size, max_frames_per_video=cfg.labelling.max_frames_per_video,
        stride=cfg.frame_stride, model_id=model_id,
    )  # fmt: skip
    day = datetime.now(UTC).date().isoformat()
    categories = list(cfg.category_to_object())
    task = export_task(
        root, brand, object_name, queue, all_detections, categories, day, cfg.labelling.datastore_root
    )
    problems = validate_task(root, brand, task, queue, creative_manifest, video_frames)
    if problems:
        raise RuntimeError(
            f"the exported task {task.folder} does not read back:\n" + "\n".join(problems[:20])
        )
    meta = {
        "status": "ok",
        "profile": cfg.profile,
        "model_id": model_id,
        "queued": len(queue),
        "queued_frames": int(queue["frame_index"].notna().sum()),
        "queued_creatives": int(queue["creative_id"].nunique()),
        "unlabelled_images": int((~images["image_path"].astype(str).isin(labelled)).sum()),
        "weighting": weighting,
        "queued_impression_share": float(queue.drop_duplicates("creative_id")["impression_weight"].sum()),
        "mean_uncertainty": float(queue["uncertainty"].mean()) if len(queue) else 0.0,
        "thresholds": dg.MetadataValue.json(thresholds),
        "export": dg.MetadataValue.path(str(task.folder)),
        "pre_annotations": task.pre_annotations,
        "preview": preview(queue.drop(columns=["brand", "object", "model_id"]), 20),
    }
    if detected_by and detected_by != [model_id]:
        meta["warning"] = (
            f"detections are from model {', '.join(detected_by)}, thresholds from {model_id}: "
            "re-materialise detections for an up-to-date queue"
        )
        context.log.warning(meta["warning"])
    grid = _top_items_grid(root, queue, all_detections, cfg.media.max_megapixels)
    if grid:
        meta["top_items"] = dg.MetadataValue.md(grid)
    return dg.Output(queue, metadata=meta)
