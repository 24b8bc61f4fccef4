"""Training: the exhaustive grid per brand × object and the chosen model (with the Haar baseline for faces)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from creative_assets.assets.declare import table_assets
from creative_assets.assets.metadata import preview
from creative_assets.assets.progress import stage_progress
from creative_assets.detection.backend import CocoSplit
from creative_assets.detection.baseline import verdict_on_test_split
from creative_assets.detection.evaluation import always_absent_accuracy, load_ground_truth
from creative_assets.detection.grid import choose_best_trial
from creative_assets.detection.grid_executors import run_grid
from creative_assets.detection.haar import HAAR_CASCADES, haar_baseline
from creative_assets.detection.label_fit import fit_rule, fit_to_split
from creative_assets.detection.registry import backend_by_name, backend_choice, resolve_device
from creative_assets.detection.retention import folder_bytes, forget_pruned_winner, prune_losing_checkpoints
from creative_assets.detection.selection import (
    NO_MODEL,
    best_confidence,
    by_size_frame,
    chosen_frame,
    chosen_row,
    confusions_of,
    grid_folder,
    long_accuracy,
    model_lineage,
    no_model_row,
    training_seconds,
)
from creative_assets.jobs import ACCELERATOR_TAG
from creative_assets.locks import partition_lock
from creative_assets.partitions import brand_object_partitions, split_partition_key
from creative_assets.reporting.plots import confusion_matrices, heatmap_grid, markdown_image
from creative_assets.resources.model_store import LocalModelStore
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.version import code_version

OWNERS = ["team:computer-vision"]
asset = table_assets("training", OWNERS, {"pytorch", "parquet"})


def split_of(root_dir: Path, datasets: pd.DataFrame, split: str) -> CocoSplit:
    """The CocoSplit of one split of a coco_datasets table."""
    row = datasets.loc[datasets["split"] == split].iloc[0]
    return CocoSplit(json_path=root_dir / str(row["json_path"]), image_root=root_dir)


def grid_plots(trials: pd.DataFrame, best: pd.Series, confidences: list[float], title: str) -> dict:
    """Heat maps of the grid (one per confidence) with the best trial's cell outlined, and the best trial's
    confusion matrices, for the UI."""
    cell = (int(best["max_iter"]), int(best["batch_size_per_image"]))
    return {
        "accuracy_heatmaps": dg.MetadataValue.md(
            markdown_image(
                heatmap_grid(long_accuracy(trials, confidences), confidences, marked=cell),
                "valid accuracy by MAX_ITER × BATCH_SIZE_PER_IMAGE",
            )
        ),
        "heatmap_marked_cell": f"MAX_ITER={cell[0]} BATCH_SIZE_PER_IMAGE={cell[1]} ({best['trial']})",
        "best_confusion_matrices": dg.MetadataValue.md(
            markdown_image(
                confusion_matrices(confusions_of(best, confidences), f"{title} {best['trial']}"),
                "confusion matrices of the best trial",
            )
        ),
    }


@asset(
    "grid_search",
    brand_object_partitions,
    op_tags={ACCELERATOR_TAG: "1"},
    check_specs=[
        dg.AssetCheckSpec("grid_complete", asset="grid_search", description="every grid trial has a row")
    ],
)
def grid_search(context: dg.AssetExecutionContext, settings: SettingsResource, coco_datasets: pd.DataFrame):
    """One Faster R-CNN per trial over SOLVER.MAX_ITER × ROI_HEADS.BATCH_SIZE_PER_IMAGE, scored on valid."""
    cfg = settings.load()
    root = settings.root()
    brand, object_name = split_partition_key(context.partition_key)
    expected = len(cfg.grid.max_iter) * len(cfg.grid.batch_size_per_image)
    if coco_datasets.empty:
        context.log.info(f"{brand}|{object_name}: no labels, no grid")
        yield dg.Output(pd.DataFrame({"trial": pd.Series(dtype="string")}), metadata={"status": NO_MODEL})
        yield dg.AssetCheckResult(check_name="grid_complete", passed=True, metadata={"status": NO_MODEL})
        return
    choice = backend_choice(cfg.train)
    backend = backend_by_name(choice.name, cfg.train)
    device = resolve_device(cfg.train.device)
    classes = list(cfg.object(object_name).categories)
    train_split = split_of(root.root, coco_datasets, "train")
    valid_split = split_of(root.root, coco_datasets, "valid")
    label_fit = fit_to_split(cfg.train, cfg.fit, train_split.json_path, classes)
    cfg = cfg.model_copy(update={"train": label_fit.settings})
    out_dir = grid_folder(cfg, brand, object_name, str(coco_datasets["fingerprint"].iloc[0]))
    context.log.info(
        f"grid {brand}|{object_name}: {expected} trials, backend {backend.name} ({choice.reason}), "
        f"{cfg.train.architecture}, device {device}, profile {cfg.profile}, trials in {out_dir}"
    )
    failed = None

    def run_trials():
        nonlocal failed
        if cfg.executor == "ray":
            from creative_assets.execution.ray_grid import run_grid_ray

            result = run_grid_ray(
                backend.name, train_split, valid_split, classes, cfg, out_dir, log=context.log.info
            )
        else:
            result = run_grid(
                backend,
                train_split,
                valid_split,
                classes,
                cfg,
                out_dir,
                progress=stage_progress(context, f"{brand}|{object_name}: grid", "iterations"),
                log=context.log.info,
            )
        # one failure policy for every executor: failed trials are rows here, the check below fails
        failed = result.errors
        if result.trials.empty:
            raise RuntimeError(f"every grid trial failed:\n{result.errors.to_string()}")
        return result

    with partition_lock(out_dir, log=context.log.info):
        result = run_trials()
        best = choose_best_trial(result.trials)
        if forget_pruned_winner(out_dir / "trials", str(best["trial"])):
            # the grid grew and an earlier loser, whose checkpoint retention removed, now wins
            context.log.info(f"trial {best['trial']} wins now but its checkpoint was removed: retraining it")
            result = run_trials()
            best = choose_best_trial(result.trials)
    trials = result.trials
    meta = {
        "status": "ok",
        "profile": cfg.profile,
        "executor": cfg.executor,
        "backend": backend.name,
        "backend_choice": choice.reason,
        "architecture": cfg.train.architecture,
        "device": device,
        "trials": len(trials),
        "best_trial": str(best["trial"]),
        "best_mean_accuracy": float(best["mean_accuracy"]),
        "why_best": "highest mean valid accuracy over the confidences; ties: higher AP, then cheaper trial",
        "train_seconds_total": training_seconds(trials),
        "trial_table": preview(
            trials[[c for c in trials.columns if not c.startswith(("tp_", "fp_", "tn_", "fn_"))]], 20
        ),
        **grid_plots(trials, best, cfg.confidences, f"{brand}|{object_name}"),
        "best_AP": float(best["AP"]),
        "best_AP50": float(best["AP50"]),
        "best_by_size": preview(by_size_frame(best)),
        "label_fit": dg.MetadataValue.json(label_fit.report),
        "by_size_input": f"box sizes at the test input: short side {cfg.train.min_size_test} px, long side at "
        f"most {cfg.train.max_size_test} px",
    }
    if failed is not None and len(failed):
        meta["failed_trials"] = preview(failed)
    yield dg.Output(trials, metadata=meta)
    yield dg.AssetCheckResult(
        check_name="grid_complete",
        passed=len(trials) == expected,
        metadata={"expected": expected, "rows": len(trials)},
    )


@asset(
    "chosen_model",
    brand_object_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            "beats_always_absent", asset="chosen_model", description="accuracy > 'always absent'"
        ),
        dg.AssetCheckSpec(
            "beats_haar", asset="chosen_model", description="face/smile: accuracy > OpenCV Haar"
        ),
        dg.AssetCheckSpec(
            "beats_always_absent_on_test",
            asset="chosen_model",
            description="held-out test accuracy > 'always absent' (else detections carry model_beats_baseline=false)",
        ),
    ],
)
def chosen_model(
    context: dg.AssetExecutionContext,
    settings: SettingsResource,
    model_store: LocalModelStore,
    grid_search: pd.DataFrame,
    coco_datasets: pd.DataFrame,
):
    """The best grid trial's checkpoint and config in the model store, with metrics and lineage."""
    cfg = settings.load()
    root = settings.root()
    brand, object_name = split_partition_key(context.partition_key)
    if grid_search.empty or coco_datasets.empty:
        yield dg.Output(no_model_row(brand, object_name, cfg.profile), metadata={"status": NO_MODEL})
        yield dg.AssetCheckResult(
            check_name="beats_always_absent", passed=True, metadata={"status": NO_MODEL}
        )
        yield dg.AssetCheckResult(check_name="beats_haar", passed=True, metadata={"status": NO_MODEL})
        yield dg.AssetCheckResult(
            check_name="beats_always_absent_on_test", passed=True, metadata={"status": NO_MODEL}
        )
        return
    best = choose_best_trial(grid_search)
    valid = split_of(root.root, coco_datasets, "valid")
    # the grid trained with these (the fit is a pure function of the train split and the settings)
    classes = cfg.object(object_name).categories
    label_fit = fit_to_split(
        cfg.train, cfg.fit, split_of(root.root, coco_datasets, "train").json_path, classes
    )
    gt = load_ground_truth(valid.json_path)
    absent = float(always_absent_accuracy(gt.presence))
    primary, acc = best_confidence(best, cfg.confidences)
    haar_acc = None
    if object_name in HAAR_CASCADES:
        haar_acc = float(haar_baseline(gt, valid.image_root, gt.classes[0], cascade=object_name).accuracy)
    checkpoint = Path(str(best["checkpoint"]))
    checkpoint = checkpoint if checkpoint.is_absolute() else root.root / checkpoint
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"the best trial's checkpoint {checkpoint} is missing; re-materialise grid_search for "
            f"{brand}|{object_name} (it retrains a winner whose checkpoint is gone)"
        )
    fingerprint = str(coco_datasets["fingerprint"].iloc[0])
    fitted_cfg = cfg.model_copy(update={"train": label_fit.settings})
    lineage = model_lineage(best, brand, object_name, classes, fingerprint, code_version(), fitted_cfg)
    lineage["label_fit"] = {**label_fit.report, "why": fit_rule(cfg.fit)}
    record = model_store.publish(brand, object_name, checkpoint, lineage)
    retention: dict[str, object] = {"kept_trial_checkpoints": cfg.grid.keep_trial_checkpoints}
    if not cfg.grid.keep_trial_checkpoints:
        pruned = prune_losing_checkpoints(checkpoint.parent.parent, lineage["trial"])
        retention.update(
            {
                "removed_trial_checkpoints": len(pruned.removed),
                "freed_mb": round(pruned.freed_bytes / 2**20, 1),
            }
        )
        if pruned.removed:
            context.log.info(
                f"{brand}|{object_name}: removed the checkpoints of {len(pruned.removed)} losing trials "
                f"({pruned.freed_bytes / 2**20:.1f} MB); grid.keep_trial_checkpoints keeps them"
            )
    retention["model_folder_mb"] = round(folder_bytes(root.models(brand, object_name)) / 2**20, 1)
    # the model as detection runs it (tiled when the object's tiling is on); imported here because the
    # detection assets import this module
    from creative_assets.assets.detection import load_detector

    published = load_detector(cfg, root, lineage["backend"], record["checkpoint"], object_name)
    verdict = verdict_on_test_split(
        published,
        split_of(root.root, coco_datasets, "test"),
        primary / 100,
        images_per_forward=cfg.detection.images_per_forward,
    )
    if not verdict.beats:
        context.log.warning(f"{brand}|{object_name}: the chosen model {verdict.words()}")
    row = chosen_row(best, lineage, record, absent, haar_acc, verdict)
    meta = {
        "status": "model",
        "model_id": record["model_id"],
        "checkpoint": dg.MetadataValue.path(str(root.root / record["checkpoint"])),
        "trial": lineage["trial"],
        "mean_valid_accuracy": row["mean_accuracy"],
        "best_confidence": primary / 100,
        "valid_accuracy_at_best_confidence": acc,
        "always_absent_accuracy": absent,
        "beats_baseline": verdict.beats,
        "baseline_verdict": verdict.words(),
        "test_accuracy": verdict.test_accuracy,
        "test_always_absent_accuracy": verdict.always_absent_accuracy,
        "AP": row["AP"],
        "AP50": row["AP50"],
        "lineage": dg.MetadataValue.json(lineage),
        "retention": dg.MetadataValue.json(retention),
        **grid_plots(grid_search, best, cfg.confidences, f"{brand}|{object_name}"),
    }
    if haar_acc is not None:
        meta["haar_accuracy"] = haar_acc
        meta["margin_over_haar"] = acc - haar_acc
    yield dg.Output(chosen_frame([row]), metadata=meta)
    yield dg.AssetCheckResult(
        check_name="beats_always_absent",
        passed=acc > absent,
        metadata={"accuracy": acc, "confidence": primary / 100, "always_absent": absent},
    )
    yield dg.AssetCheckResult(
        check_name="beats_haar",
        passed=haar_acc is None or acc > haar_acc,
        metadata={
            "accuracy": acc,
            "confidence": primary / 100,
            "haar": haar_acc if haar_acc is not None else "n/a (not face/smile)",
        },
    )
    yield dg.AssetCheckResult(
        check_name="beats_always_absent_on_test",
        passed=verdict.beats,
        description=verdict.words(),
        metadata={
            "test_accuracy": verdict.test_accuracy,
            "always_absent": verdict.always_absent_accuracy,
            "confidence": verdict.confidence,
            "test_images": verdict.test_images,
            "verdict": verdict.words(),
        },
    )
