"""Detection: per-class thresholds per brand × object, then every creative through every chosen model."""

from itertools import islice

import dagster as dg
import pandas as pd

from creative_assets.assets.declare import table_assets
from creative_assets.assets.metadata import error_metadata, preview
from creative_assets.assets.progress import stage_progress
from creative_assets.assets.training import split_of
from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.batch_parts import BATCH_FAILURE_STAGE, errors_folder
from creative_assets.detection.batch_rows import DeferredModels, LoadedModel
from creative_assets.detection.batches import ModelDescriptor, work_items
from creative_assets.detection.brand_models import brand_models
from creative_assets.detection.evaluation import by_size_at_thresholds, load_ground_truth
from creative_assets.detection.registry import backend_by_name
from creative_assets.detection.selection import NO_MODEL
from creative_assets.detection.split_inference import predict_split
from creative_assets.detection.thresholds import optimal_thresholds as compute_optimal_thresholds
from creative_assets.detection.tiling import TiledDetector, inference_of
from creative_assets.jobs import ACCELERATOR_TAG
from creative_assets.layout import DataRoot
from creative_assets.locks import partition_lock
from creative_assets.media.decode import ImageDecodeError, decode_file
from creative_assets.media.removals import REMOVALS_ASSET, confirmed_removals
from creative_assets.partitions import brand_object_partitions, brand_partitions, split_partition_key
from creative_assets.reporting.plots import detections_overlay, markdown_image, threshold_curve
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import TableRef
from creative_assets.settings import Settings, TilingSettings
from creative_assets.tables.schemas import DETECTION_COLUMNS
from creative_assets.tables.warehouse import count_true, read_head, read_table

OWNERS = ["team:computer-vision"]
asset = table_assets("detection", OWNERS, {"pytorch", "parquet"})
THRESHOLD_COLUMNS = [
    "brand", "object", "class_name", "model_id", "threshold",
    "valid_accuracy", "valid_precision", "valid_recall", "valid_f1",
    "test_accuracy", "test_precision", "test_recall", "test_f1", "valid_positives", "test_positives",
    "valid_n", "test_n",
]  # fmt: skip


def tiling_of(cfg: Settings, object_name: str) -> TilingSettings | None:
    """The object's tiling settings when tiled inference is on for it (its name may be gone from settings)."""
    if object_name not in cfg.object_names:
        return None
    tiling = cfg.object(object_name).tiling
    return tiling if tiling.enabled else None


def load_detector(
    cfg: Settings, root: DataRoot, backend: str, checkpoint: str, object_name: str | None = None
):
    """Load a chosen model's checkpoint (relative to the data root) with the backend that trained it, tiled
    when the object's `tiling` setting is on (the threshold sweep and detection then see the same boxes)."""
    detector = backend_by_name(backend, cfg.train).load(root.root / checkpoint)
    tiling = tiling_of(cfg, object_name) if object_name is not None else None
    return TiledDetector(detector, tiling) if tiling is not None else detector


def _empty_thresholds() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in THRESHOLD_COLUMNS})
    for c in ("brand", "object", "class_name", "model_id"):
        df[c] = df[c].astype("string")
    for c in ("valid_positives", "test_positives", "valid_n", "test_n"):
        df[c] = df[c].astype("int64")
    return df


@asset(
    "optimal_thresholds",
    brand_object_partitions,
    op_tags={ACCELERATOR_TAG: "1"},
)
def optimal_thresholds(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    chosen_model: pd.DataFrame,
    coco_datasets: pd.DataFrame,
) -> dg.Output:
    """Per class: the score threshold (0.20–0.99, step 0.01) with the best valid accuracy, and its test scores."""
    cfg = settings.load()
    root = settings.root()
    brand, object_name = split_partition_key(context.partition_key)
    row = chosen_model.iloc[0]
    if row["status"] != "model":
        return dg.Output(_empty_thresholds(), metadata={"status": NO_MODEL})
    detector = load_detector(cfg, root, str(row["backend"]), str(row["checkpoint"]), object_name)
    splits = {s: split_of(root.root, coco_datasets, s) for s in ("valid", "test")}
    gts = {s: load_ground_truth(sp.json_path) for s, sp in splits.items()}
    floor = min(cfg.thresholds.start, cfg.detection.score_floor)
    preds = {
        s: predict_split(detector, sp, images_per_forward=cfg.detection.images_per_forward, score_floor=floor)
        for s, sp in splits.items()
    }
    # the input the model was fitted to (a tiled detector wraps the model's own detector)
    trained = getattr(getattr(detector, "inner", detector), "meta", {}).get("train_settings", {})
    test_size = (
        int(trained.get("min_size_test", cfg.train.min_size_test)),
        int(trained.get("max_size_test", cfg.train.max_size_test)),
    )
    table, sweeps = compute_optimal_thresholds(
        gts["valid"], preds["valid"], gts["test"], preds["test"], cfg.thresholds.values()
    )
    table = table.copy()
    table.insert(0, "brand", brand)
    table.insert(1, "object", object_name)
    table.insert(3, "model_id", str(row["model_id"]))
    table = table[THRESHOLD_COLUMNS].astype(
        {c: "string" for c in ("brand", "object", "class_name", "model_id")}
    )
    meta = {
        "status": "ok",
        "model_id": str(row["model_id"]),
        "thresholds": preview(table),
        "test_by_size": preview(
            by_size_at_thresholds(
                gts["test"],
                preds["test"],
                {str(r.class_name): float(r.threshold) for r in table.itertuples()},
                *test_size,
            )
        ),
        "by_size_note": f"box sizes at the model's test input (short side {test_size[0]} px, long side at "
        f"most {test_size[1]} px); AP over detections ≥ {floor}, recall50 over those ≥ each class's "
        "threshold",
        "tie_break": "highest valid accuracy; ties: highest F1, then the middle of the widest tied run",
    }
    for r in table.itertuples():
        meta[f"threshold_{r.class_name}"] = float(r.threshold)
        meta[f"test_accuracy_{r.class_name}"] = float(r.test_accuracy)
        meta[f"curve_{r.class_name}"] = dg.MetadataValue.md(
            markdown_image(
                threshold_curve(
                    sweeps[r.class_name], float(r.threshold), f"{brand}|{object_name}: {r.class_name}"
                ),
                f"valid accuracy vs threshold for {r.class_name}",
            )
        )
    return dg.Output(table, metadata=meta)


def _brand_inputs(values: dict[str, pd.DataFrame] | pd.DataFrame) -> list[pd.DataFrame]:
    if isinstance(values, pd.DataFrame):
        return [values]
    return [values[k] for k in sorted(values)]


def deferred_models(
    cfg: Settings, root: DataRoot, chosen: list[pd.DataFrame], thresholds: list[pd.DataFrame]
) -> DeferredModels:
    """Every chosen model of the brand with its per-class thresholds: described from the chosen_model rows,
    loaded (once) only if a batch has to run."""
    published = brand_models(chosen, thresholds, cfg.thresholds.start)
    descriptors = tuple(
        ModelDescriptor(
            m.object_name,
            m.model_id,
            m.backend,
            m.classes,
            m.thresholds,
            inference_of(tiling_of(cfg, m.object_name)),
            m.beats_baseline,
        )
        for m in published
    )

    def load() -> list[LoadedModel]:
        return [
            LoadedModel(
                m.object_name,
                m.model_id,
                load_detector(cfg, root, m.backend, m.checkpoint, m.object_name),
                m.thresholds,
                m.beats_baseline,
            )
            for m in published
        ]

    return DeferredModels(descriptors, load)


def model_specs(cfg: Settings, chosen: list[pd.DataFrame], thresholds: list[pd.DataFrame]):
    """The brand's chosen models as picklable specs for Ray actors, which load them themselves."""
    from creative_assets.execution.ray_detect import ModelSpec

    return [
        ModelSpec(
            m.object_name,
            m.model_id,
            m.backend,
            m.checkpoint,
            m.thresholds,
            m.classes,
            tiling_of(cfg, m.object_name),
            m.beats_baseline,
        )
        for m in brand_models(chosen, thresholds, cfg.thresholds.start)
    ]


def _overlay_samples(root: DataRoot, detections: pd.DataFrame, max_megapixels: float, limit: int = 3) -> str:
    shown = detections[detections["above_threshold"]]
    parts = []
    for creative, group in islice(
        shown.groupby(["creative_id", "frame_index"], dropna=False, sort=True), limit
    ):
        first = group.iloc[0]
        if pd.isna(first["frame_index"]):
            path = root.creatives(str(first["brand"])) / str(first["creative_id"])
        else:
            path = root.frame_path(str(first["brand"]), str(first["creative_id"]), int(first["frame_index"]))
        try:
            decoded = decode_file(path, max_megapixels)
        except ImageDecodeError:
            continue
        scale = [decoded.scale_x, decoded.scale_y, decoded.scale_x, decoded.scale_y]
        png = detections_overlay(
            decoded.image,
            group[["x_min", "y_min", "x_max", "y_max"]].to_numpy() / scale,
            group["class_name"].astype(str).tolist(),
            group["score"].to_numpy(),
        )
        parts.append(markdown_image(png, f"detections on {creative[0]}"))
    return "\n\n".join(parts)


@asset(
    "detections",
    brand_partitions,
    op_tags={ACCELERATOR_TAG: "1"},
    ins={
        "chosen_model": dg.AssetIn(
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="brand"),
            metadata={"allow_missing_partitions": True, "as_dict": True},
        ),
        "optimal_thresholds": dg.AssetIn(
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="brand"),
            metadata={"allow_missing_partitions": True, "as_dict": True},
        ),
    },
    check_specs=[
        dg.AssetCheckSpec(
            "every_batch_committed",
            asset="detections",
            description="no batch failed after its retries (failed batches are retried by the next run)",
        )
    ],
)
def detections(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    creative_manifest: pd.DataFrame,
    video_frames: pd.DataFrame,
    chosen_model,
    optimal_thresholds,
):
    """Every detection ≥ the score floor on every image and frame of the brand, from all its chosen models."""
    cfg = settings.load()
    root = settings.root()
    brand = context.partition_key
    chosen, thresholds = _brand_inputs(chosen_model), _brand_inputs(optimal_thresholds)
    items = work_items(creative_manifest, video_frames)
    out_dir = root.warehouse("detections", brand)
    progress = stage_progress(context, f"{brand}: detection", "images")
    common = {
        "batch_size": cfg.detection.batch_size,
        "images_per_forward": cfg.detection.images_per_forward,
        "score_floor": cfg.detection.score_floor,
        "log": context.log.info,
        "progress": progress,
        "max_megapixels": cfg.media.max_megapixels,
        # only creatives the manifest says were removed lose their committed rows
        "removed": confirmed_removals(read_table(root.warehouse(REMOVALS_ASSET, brand))),
    }
    with partition_lock(out_dir, log=context.log.info):
        if cfg.executor == "ray":
            from creative_assets.execution.ray_detect import run_detection_ray

            models = model_specs(cfg, chosen, thresholds)
            context.log.info(
                f"{brand}: {len(models)} models on Ray: {', '.join(m.object_name for m in models)}"
            )
            run = run_detection_ray(root, brand, items, models, out_dir, train_settings=cfg.train, **common)
        else:
            deferred = deferred_models(cfg, root, chosen, thresholds)
            models = deferred.descriptors
            context.log.info(
                f"{brand}: {len(models)} models: {', '.join(m.object_name for m in models) or 'none'}"
            )
            run = run_detection(
                root,
                brand,
                items,
                deferred,
                out_dir,
                loader_workers=cfg.detection.loader_workers,
                model_threads=cfg.detection.model_threads,
                **common,
            )
    errors_path = errors_folder(out_dir)
    # metadata from the committed parts without loading the whole table (it grows with the creatives)
    head = read_head(out_dir, 1000)
    meta = {
        "executor": cfg.executor,
        "models": ", ".join(f"{m.object_name}:{m.model_id}" for m in models) or "none",
        "images": run.images,
        "rows": run.rows,
        "above_threshold": count_true(out_dir, "above_threshold"),
        "batches_written": run.parts_written,
        "batches_reused": run.parts_reused,
        "batches_removed": run.parts_removed,
        "batches_kept_unseen": run.parts_kept_unseen,
        "images_per_s": round(run.images_per_s, 2),
        "path": dg.MetadataValue.path(str(out_dir)),
        "preview": preview(head[DETECTION_COLUMNS] if len(head) else head),
        **error_metadata(run.errors, errors_path),
    }
    if len(head):
        samples = _overlay_samples(root, head, cfg.media.max_megapixels)
        if samples:
            meta["samples"] = dg.MetadataValue.md(samples)
    failed = run.errors[run.errors["stage"] == BATCH_FAILURE_STAGE] if len(run.errors) else run.errors
    yield dg.Output(TableRef(folder=root.relative(out_dir), rows=run.rows), metadata=meta)
    yield dg.AssetCheckResult(
        check_name="every_batch_committed",
        passed=len(failed) == 0,
        metadata={"failed_batches": len(failed), **({"failed": preview(failed)} if len(failed) else {})},
    )
