"""Datasets: resolved labels per brand, and validated train/valid/test COCO files per brand × object."""

import json

import dagster as dg
import numpy as np
import pandas as pd

from creative_assets.assets.declare import table_assets
from creative_assets.assets.metadata import error_metadata, preview, table_version, write_errors
from creative_assets.detection.box_stats import box_statistics, read_label_boxes
from creative_assets.labels.coco_splits import (
    DATASET_COLUMNS,
    DATASET_DTYPES,
    build_coco_datasets,
    dataset_table,
)
from creative_assets.labels.legacy_coco_files import remove_legacy_coco_files
from creative_assets.labels.pooling import join_label_rows, object_labels
from creative_assets.labels.resolve import build_label_set
from creative_assets.layout import DataRoot, PathEscapeError
from creative_assets.media.decode import ImageDecodeError, decode_file
from creative_assets.partitions import brand_object_partitions, brand_partitions, split_partition_key
from creative_assets.reporting.plots import image_grid, markdown_image
from creative_assets.resources.settings_resource import SettingsResource

OWNERS = ["team:data-engineering"]
asset = table_assets("datasets", OWNERS, {"coco", "parquet"})


@asset(
    "labels",
    brand_partitions,
    kinds={"python", "parquet"},
    deps=["raw_labels"],
    check_specs=[
        dg.AssetCheckSpec("labels_valid", asset="labels", description="every label record imported")
    ],
)
def labels(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    creative_manifest: pd.DataFrame,
    video_frames: pd.DataFrame,
):
    """The brand's labels (COCO / Azure ML exports) resolved to creatives and frames, one row per box."""
    cfg = settings.load()
    root = settings.root()
    brand = context.partition_key
    label_set = build_label_set(root, brand, creative_manifest, video_frames, list(cfg.category_to_object()))
    rows = join_label_rows(label_set.images, label_set.annotations)
    errors_path = write_errors(root, "labels_errors", brand, label_set.errors)
    per_category = label_set.annotations["category"].value_counts().to_dict()
    yield dg.Output(
        rows,
        data_version=table_version(rows),
        metadata={
            "labelled_images": len(label_set.images),
            "boxes": len(label_set.annotations),
            **{f"boxes_{k}": int(v) for k, v in sorted(per_category.items())},
            "preview": preview(rows),
            **error_metadata(label_set.errors, errors_path),
        },
    )
    yield dg.AssetCheckResult(
        check_name="labels_valid",
        passed=len(label_set.errors) == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"errors": len(label_set.errors)},
    )


def _sample_grid(root: DataRoot, json_path: str, limit: int = 8) -> str | None:
    """Up to `limit` training images with their boxes drawn, as markdown for the UI."""
    import cv2

    coco = json.loads((root.root / json_path).read_text(encoding="utf-8"))
    by_image: dict[int, list] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images, captions = [], []
    for img in coco["images"]:
        if img["id"] not in by_image:
            continue
        try:
            pixels = decode_file(root.resolve_inside(img["file_name"])).image
        except (ImageDecodeError, PathEscapeError):
            continue
        for ann in by_image[img["id"]]:
            x, y, w, h = (int(round(v)) for v in ann["bbox"])
            cv2.rectangle(pixels, (x, y), (x + w, y + h), (0, 255, 0), 2)
        images.append(pixels)
        captions.append(img["file_name"].rsplit("/", 1)[-1])
        if len(images) >= limit:
            break
    if not images:
        return None
    return markdown_image(image_grid(images, captions, ncols=4), "training samples")


@asset(
    "coco_datasets",
    brand_object_partitions,
    ins={
        "labels": dg.AssetIn(
            partition_mapping=dg.AllPartitionMapping(),
            metadata={"as_dict": True, "allow_missing_partitions": True},
        )
    },
    check_specs=[
        dg.AssetCheckSpec(
            "dataset_valid", asset="coco_datasets", description="each split non-empty, has positives"
        )
    ],
)
def coco_datasets(context: dg.AssetExecutionContext, settings: SettingsResource, labels):
    """Train/valid/test COCO files for the object's categories, split by source creative (face/smile pooled)."""
    cfg = settings.load()
    root = settings.root()
    brand, object_name = split_partition_key(context.partition_key)
    spec = cfg.object(object_name)
    images, annotations = object_labels(labels, brand, spec.pooled, spec.categories)
    positives = annotations["image_path"].nunique()
    out_dir = root.datasets(brand, object_name)
    legacy = remove_legacy_coco_files(root, brand, object_name)
    if legacy:
        context.log.info(
            f"{brand}|{object_name}: removed {len(legacy)} COCO file(s) of the old layout under warehouse/ "
            f"(they now live in datasets/{brand}/{object_name}/)"
        )
    base_meta = {
        "object": object_name,
        "categories": ", ".join(spec.categories),
        "pooled_brands": ", ".join(sorted(labels)) if spec.pooled and isinstance(labels, dict) else brand,
        "labelled_images": len(images),
        "positive_images": int(positives),
    }
    if legacy:
        base_meta["removed_legacy_coco_files"] = dg.MetadataValue.json(legacy)
    if positives == 0 or images["creative_id"].nunique() < 3:
        reason = "no labels" if positives == 0 else "too few labelled creatives to split (need 3)"
        context.log.info(f"{brand}|{object_name}: {reason}; materialising as 'no labels'")
        empty = pd.DataFrame({c: pd.Series(dtype=DATASET_DTYPES[c]) for c in DATASET_COLUMNS})
        yield dg.Output(
            empty,
            data_version=table_version(empty),
            metadata={**base_meta, "status": "no labels", "reason": reason},
        )
        yield dg.AssetCheckResult(check_name="dataset_valid", passed=True, metadata={"status": "no labels"})
        return
    built = build_coco_datasets(
        images,
        annotations,
        list(spec.categories),
        (cfg.split.train, cfg.split.valid, cfg.split.test),
        cfg.split.seed,
        out_dir,
        root,
    )
    fingerprint = built.fingerprint
    table = dataset_table(built.table, built.class_balance, fingerprint)
    meta = {
        **base_meta,
        "status": "ok",
        "fingerprint": fingerprint,
        "thing_classes": ", ".join(built.metadata["thing_classes"]),
        "splits": preview(table),
        "class_balance": preview(built.class_balance),
    }
    train_json = str(table.loc[table["split"] == "train", "json_path"].iloc[0])
    # at the smallest training input: the size a box is hardest to learn at
    short, long = min(cfg.train.min_size_train), cfg.train.max_size_train
    sizes = box_statistics(read_label_boxes(root.root / train_json, spec.categories), short, long)
    meta["box_sizes"] = preview(sizes)
    meta["box_sizes_input"] = f"short side {short} px, long side at most {long} px (train split)"
    grid = _sample_grid(root, train_json)
    if grid:
        meta["samples"] = dg.MetadataValue.md(grid)
    # From the content (split files' fingerprint): a pair whose labels did not change keeps its version when
    # the datasets are rebuilt, so nothing downstream of it counts as changed.
    yield dg.Output(table, data_version=table_version(table), metadata=meta)
    problems = [
        f"{r.split}: {why}"
        for r in table.itertuples()
        for why, bad in (("empty", r.images == 0), ("no positive image", r.positive_images == 0))
        if bad
    ]
    yield dg.AssetCheckResult(
        check_name="dataset_valid",
        passed=not problems,
        metadata={
            "problems": "; ".join(problems) or "none",
            "positive_share": float(np.round(positives / len(images), 3)),
        },
    )
