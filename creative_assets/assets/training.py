"""Training: the exhaustive grid per brand × object and the chosen model (with the Haar baseline for faces)."""

import hashlib
import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from creative_assets.assets.metadata import preview
from creative_assets.assets.progress import stage_progress
from creative_assets.detection.backend import CocoSplit
from creative_assets.detection.box_stats import SIZE_BIN_NAMES, SIZE_BINS_PX
from creative_assets.detection.evaluation import always_absent_accuracy, load_ground_truth
from creative_assets.detection.grid import choose_best_trial
from creative_assets.detection.grid_executors import run_grid
from creative_assets.detection.haar import HAAR_CASCADES, haar_baseline
from creative_assets.detection.label_fit import fit_to_split
from creative_assets.detection.registry import backend_by_name, backend_choice, resolve_device
from creative_assets.detection.retention import folder_bytes, forget_pruned_winner, prune_losing_checkpoints
from creative_assets.jobs import ACCELERATOR_TAG
from creative_assets.layout import DataRoot
from creative_assets.locks import partition_lock
from creative_assets.partitions import brand_object_partitions, split_partition_key
from creative_assets.reporting.plots import confusion_matrices, heatmap_grid, markdown_image
from creative_assets.resources.model_store import LocalModelStore
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.settings import Settings
from creative_assets.version import ASSET_CODE_VERSIONS, code_version

OWNERS = ["team:computer-vision"]
NO_MODEL = "no model"


def split_of(root_dir: Path, datasets: pd.DataFrame, split: str) -> CocoSplit:
    """The CocoSplit of one split of a coco_datasets table."""
    row = datasets.loc[datasets["split"] == split].iloc[0]
    return CocoSplit(json_path=root_dir / str(row["json_path"]), image_root=root_dir)


def grid_folder(cfg: Settings, brand: str, object_name: str, fingerprint: str) -> Path:
    """Trials live under a folder keyed by dataset and training settings, so a changed input never resumes."""
    spec = json.dumps(
        {"train": cfg.train.model_dump(mode="json"), "confidences": cfg.confidences, "fp": fingerprint},
        sort_keys=True,
    )
    key = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return DataRoot(cfg.data_root).models(brand, object_name) / "grid" / key


def long_accuracy(trials: pd.DataFrame, confidences: list[float]) -> pd.DataFrame:
    """Trial × confidence rows (max_iter, batch_size_per_image, confidence, accuracy, …) for heat maps."""
    rows = []
    for t in trials.itertuples():
        for c in confidences:
            pct = int(round(c * 100))
            rows.append(
                {
                    "trial": t.trial,
                    "max_iter": t.max_iter,
                    "batch_size_per_image": t.batch_size_per_image,
                    "confidence": c,
                    **{m: getattr(t, f"{m}_{pct}") for m in ("accuracy", "precision", "recall", "f1")},
                }
            )
    return pd.DataFrame(rows)


def confusions_of(trial: pd.Series, confidences: list[float]) -> dict[float, np.ndarray]:
    """2×2 confusion matrices [[TN, FP], [FN, TP]] of one trial at each confidence."""
    out = {}
    for c in confidences:
        p = int(round(c * 100))
        out[c] = np.array([[trial[f"tn_{p}"], trial[f"fp_{p}"]], [trial[f"fn_{p}"], trial[f"tp_{p}"]]])
    return out


def training_seconds(trials: pd.DataFrame) -> float:
    """Wall seconds of training behind the grid: a shared run counts once (its trials' seconds are its
    snapshots' elapsed times), a trial trained alone counts its own."""
    alone = trials["shared_run"].fillna("") == ""
    shared = trials[~alone].groupby("shared_run")["train_seconds"].max().sum()
    return float(trials.loc[alone, "train_seconds"].sum() + shared)


def by_size_frame(trial: pd.Series) -> pd.DataFrame:
    """A trial's valid AP and recall at IoU 0.5 by box size, one row per size bin."""
    return pd.DataFrame(
        [
            {
                "size": f"{name} ({lo}+ px)",
                "AP": float(trial.get(f"AP_{name}", np.nan)),
                "recall50": float(trial.get(f"recall50_{name}", np.nan)),
            }
            for name, lo in zip(SIZE_BIN_NAMES, (0, *SIZE_BINS_PX), strict=True)
        ]
    )


def grid_plots(trials: pd.DataFrame, best: pd.Series, confidences: list[float], title: str) -> dict:
    """Heat maps of the grid (one per confidence) and the best trial's confusion matrices, for the UI."""
    return {
        "accuracy_heatmaps": dg.MetadataValue.md(
            markdown_image(
                heatmap_grid(long_accuracy(trials, confidences), confidences),
                "valid accuracy by MAX_ITER × BATCH_SIZE_PER_IMAGE",
            )
        ),
        "best_confusion_matrices": dg.MetadataValue.md(
            markdown_image(
                confusion_matrices(confusions_of(best, confidences), f"{title} {best['trial']}"),
                "confusion matrices of the best trial",
            )
        ),
    }


@dg.asset(
    partitions_def=brand_object_partitions,
    group_name="training",
    kinds={"pytorch", "parquet"},
    owners=OWNERS,
    code_version=ASSET_CODE_VERSIONS["grid_search"],
    io_manager_key="warehouse_io_manager",
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


CHOSEN_COLUMNS = [
    "brand", "object", "status", "model_id", "checkpoint", "backend", "architecture", "classes", "trial",
    "max_iter", "batch_size_per_image", "base_lr", "mean_accuracy", "AP", "AP50", "always_absent_accuracy",
    "haar_accuracy", "dataset_fingerprint", "code_version", "profile", "device",
]  # fmt: skip


def no_model_row(brand: str, object_name: str, profile: str) -> pd.DataFrame:
    """The explicit 'no model' record (a None output would vanish from the detections fan-in)."""
    row = {c: None for c in CHOSEN_COLUMNS}
    row.update({"brand": brand, "object": object_name, "status": NO_MODEL, "profile": profile})
    return chosen_frame([row])


def chosen_frame(rows: list[dict]) -> pd.DataFrame:
    """A chosen_model table with stable dtypes."""
    df = pd.DataFrame(rows, columns=CHOSEN_COLUMNS)
    floats = ["base_lr", "mean_accuracy", "AP", "AP50", "always_absent_accuracy", "haar_accuracy"]
    ints = ["max_iter", "batch_size_per_image"]
    for c in CHOSEN_COLUMNS:
        if c in floats:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif c in ints:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
        else:
            df[c] = df[c].astype("string")
    return df


@dg.asset(
    partitions_def=brand_object_partitions,
    group_name="training",
    kinds={"pytorch", "parquet"},
    owners=OWNERS,
    code_version=ASSET_CODE_VERSIONS["chosen_model"],
    io_manager_key="warehouse_io_manager",
    check_specs=[
        dg.AssetCheckSpec(
            "beats_always_absent", asset="chosen_model", description="accuracy > 'always absent'"
        ),
        dg.AssetCheckSpec(
            "beats_haar", asset="chosen_model", description="face/smile: accuracy > OpenCV Haar"
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
        return
    best = choose_best_trial(grid_search)
    valid = split_of(root.root, coco_datasets, "valid")
    # the grid trained with these (the fit is a pure function of the train split and the settings)
    classes = list(cfg.object(object_name).categories)
    label_fit = fit_to_split(
        cfg.train, cfg.fit, split_of(root.root, coco_datasets, "train").json_path, classes
    )
    gt = load_ground_truth(valid.json_path)
    absent = float(always_absent_accuracy(gt.presence))
    # The checks compare at the model's best evaluated confidence (the threshold sweep refines it later).
    by_conf = {int(round(c * 100)): float(best[f"accuracy_{int(round(c * 100))}"]) for c in cfg.confidences}
    primary = max(by_conf, key=lambda p: (by_conf[p], -p))
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
    lineage = {
        "brand": brand,
        "object": object_name,
        "backend": str(best["backend"]),
        "architecture": str(best["architecture"]),
        "classes": list(cfg.object(object_name).categories),
        "trial": str(best["trial"]),
        "params": {
            "SOLVER.MAX_ITER": int(best["max_iter"]),
            "ROI_HEADS.BATCH_SIZE_PER_IMAGE": int(best["batch_size_per_image"]),
            "SOLVER.BASE_LR": float(best["base_lr"]),
            "SOLVER.IMS_PER_BATCH": int(best["ims_per_batch"]),
        },
        "metrics": {
            k: float(best[k]) for k in best.index if k.startswith(("accuracy_", "f1_", "AP", "mean_"))
        },
        "dataset_fingerprint": str(coco_datasets["fingerprint"].iloc[0]),
        "code_version": code_version(),
        "profile": cfg.profile,
        "train_settings": label_fit.settings.model_dump(mode="json"),
        "label_fit": {
            **label_fit.report,
            "why": "anchors scaled to best match the train boxes (mean best IoU); the input grown when the "
            f"{cfg.fit.box_quantile:g} quantile of box sizes is under {cfg.fit.min_box_pixels:g} px "
            f"(capped at a {cfg.fit.max_short_side} px short side)",
        },
    }
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
    row = {
        "brand": brand,
        "object": object_name,
        "status": "model",
        "model_id": record["model_id"],
        "checkpoint": record["checkpoint"],
        "backend": lineage["backend"],
        "architecture": lineage["architecture"],
        "classes": json.dumps(lineage["classes"]),
        "trial": lineage["trial"],
        "max_iter": int(best["max_iter"]),
        "batch_size_per_image": int(best["batch_size_per_image"]),
        "base_lr": float(best["base_lr"]),
        "mean_accuracy": float(best["mean_accuracy"]),
        "AP": float(best["AP"]),
        "AP50": float(best["AP50"]),
        "always_absent_accuracy": absent,
        "haar_accuracy": haar_acc,
        "dataset_fingerprint": lineage["dataset_fingerprint"],
        "code_version": lineage["code_version"],
        "profile": cfg.profile,
        "device": str(best.get("device", "")),
    }
    acc = float(best[f"accuracy_{primary}"])
    meta = {
        "status": "model",
        "model_id": record["model_id"],
        "checkpoint": dg.MetadataValue.path(str(root.root / record["checkpoint"])),
        "trial": lineage["trial"],
        "mean_valid_accuracy": row["mean_accuracy"],
        "best_confidence": primary / 100,
        "valid_accuracy_at_best_confidence": acc,
        "always_absent_accuracy": absent,
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
