"""The exhaustive hyper-parameter grid: every SOLVER.MAX_ITER × ROI_HEADS.BATCH_SIZE_PER_IMAGE pair is a trial.

Each trial is trained on `train`, evaluated on `valid` (presence metrics at each of `settings.confidences`,
COCO AP/AP50 from pycocotools) and saved as it finishes: `trials/<key>/model.pth` and then
`trials/<key>/result.json`, both written atomically. A re-run skips every trial whose result.json exists and
was made from the same settings and data (a fingerprint), so a crash costs at most the run in progress.

Prefix sharing: when `train.share_grid_prefix` is set and the backend is `prefix_stable` (its LR schedule
uses absolute STEPS/WARMUP_ITERS and its data stream depends only on the seed, so nothing depends on
MAX_ITER), the trials of one BATCH_SIZE_PER_IMAGE are trained as ONE run to the largest MAX_ITER with
snapshots at the smaller ones — the same weights as separate runs with the same seed, for a fraction of
the time. Such trials name their run in the `shared_run` column ("" for a trial trained alone), and their
`train_seconds` is the run's time up to the snapshot.

Executors: this module is the plan, the evaluation and the results on disk; `grid_executors.py` runs the
training runs (sequentially, in worker processes with `grid.parallel_runs` > 1 on a CPU, or on Ray through
`execution/ray_grid.py`) with one failure policy. As with any spawned process, a script that calls
`run_grid` with parallel runs must do so under `if __name__ == "__main__":`.

Several classes (an object mapped to several label categories): accuracy, precision, recall and F1 in the
trial table are macro-averages over the classes (each class weighs the same); tp, fp, tn and fn are sums
over classes (counted per (image, class) cell). The long table keeps every class separately.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creative_assets.atomic import atomic_write_json, remove_stale_temporaries
from creative_assets.checksums import sha256_file
from creative_assets.detection.backend import (
    CocoSplit,
    Detector,
    DetectorBackend,
    Predictions,
    TrainResult,
    TrialParams,
)
from creative_assets.detection.box_stats import SIZE_BIN_NAMES
from creative_assets.detection.evaluation import (
    PRESENCE_COLUMNS,
    GroundTruth,
    by_size_summary,
    coco_ap,
    coco_ap_by_size,
    load_ground_truth,
    max_scores,
    presence_metrics,
)
from creative_assets.detection.failure_policy import grid_error_frame
from creative_assets.detection.split_inference import predict_split
from creative_assets.layout import DataRoot
from creative_assets.settings import Settings

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "model.pth"
RESULT_FORMAT = "creative_assets/grid-trial/1"

METRICS = ("accuracy", "precision", "recall", "f1", "tp", "fp", "tn", "fn")
COUNT_METRICS = ("tp", "fp", "tn", "fn")
TRIAL_BASE_COLUMNS = [
    "trial",
    "max_iter",
    "batch_size_per_image",
    "ims_per_batch",
    "base_lr",
    "architecture",
    "backend",
    "device",
    "shared_run",
    "train_seconds",
    "AP",
    "AP50",
    # by box size at the test input (`box_stats.SIZE_BINS_PX`): AP and the recall at IoU 0.5
    *[f"{m}_{size}" for size in SIZE_BIN_NAMES for m in ("AP", "recall50")],
]
TRIAL_TAIL_COLUMNS = ["checkpoint", "mean_accuracy"]
LONG_COLUMNS = ["trial", "max_iter", "batch_size_per_image", *PRESENCE_COLUMNS]
_STRING_COLUMNS = ("trial", "architecture", "backend", "device", "shared_run", "checkpoint", "class_name")
_INT_COLUMNS = ("max_iter", "batch_size_per_image", "ims_per_batch", "n")

GridProgressFn = Callable[[int, int, dict[str, float]], None]
LogFn = Callable[[str], None]


def confidence_percent(confidence: float) -> int:
    """A confidence as the integer percent used in column names (0.2 → 20)."""
    return int(round(confidence * 100))


def trial_columns(confidences: Sequence[float]) -> list[str]:
    """Columns of the trial table for these confidences, in order."""
    per_confidence = [f"{m}_{confidence_percent(c)}" for c in confidences for m in METRICS]
    return TRIAL_BASE_COLUMNS + per_confidence + TRIAL_TAIL_COLUMNS


@dataclass
class GridResult:
    """The grid's outcome: `trials` one row per trial (`trial_columns`), `long` one row per trial × class ×
    confidence (`LONG_COLUMNS`)."""

    trials: pd.DataFrame
    long: pd.DataFrame
    # trials whose run failed after its retries (failure_policy.GRID_ERROR_COLUMNS); they are not in `trials`
    errors: pd.DataFrame = field(default_factory=lambda: grid_error_frame([]))

    @property
    def best(self) -> pd.Series:
        """The trial `choose_best_trial` picks."""
        return choose_best_trial(self.trials)


def choose_best_trial(trials: pd.DataFrame) -> pd.Series:
    """The best trial: highest mean_accuracy over the confidences; ties → higher AP, then the cheaper trial
    (smaller max_iter × batch_size_per_image), then the trial name. NaN ranks below every number."""
    if trials.empty:
        raise ValueError("no trials to choose from")

    def desc(value: Any) -> float:
        v = float(value)
        return -v if not math.isnan(v) else math.inf

    def key(i: int) -> tuple[float, float, int, str]:
        row = trials.iloc[i]
        cost = int(row["max_iter"]) * int(row["batch_size_per_image"])
        return desc(row["mean_accuracy"]), desc(row["AP"]), cost, str(row["trial"])

    return trials.iloc[min(range(len(trials)), key=key)]


def trial_fingerprint(
    settings: Settings, params: TrialParams, classes: Sequence[str], train_sha256: str, valid_sha256: str
) -> str:
    """A hash of everything a trial's result depends on: settings, params, classes and the split files."""
    what = {
        # how the work is scheduled or where it runs does not change what a trial means
        "train": settings.train.model_dump(mode="json", exclude={"share_grid_prefix", "device"}),
        "params": [params.max_iter, params.batch_size_per_image],
        "classes": list(classes),
        "confidences": list(settings.confidences),
        "train_json": train_sha256,
        "valid_json": valid_sha256,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()


def remap_predictions(
    preds: dict[int, Predictions], detector_classes: Sequence[str], gt: GroundTruth
) -> dict[int, Predictions]:
    """Relabel predictions from the detector's class order to the ground truth's."""
    mapping = np.array([gt.class_index(c) for c in detector_classes], dtype=np.int64)
    return {
        image_id: Predictions(p.boxes, p.scores, mapping[p.labels] if len(p) else p.labels)
        for image_id, p in preds.items()
    }


def evaluate_detector(
    detector: Detector,
    valid: CocoSplit,
    gt: GroundTruth,
    classes: Sequence[str],
    confidences: Sequence[float],
    images_per_forward: int = 8,
    input_size: tuple[int, int] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Presence metrics per class × confidence (long rows) and the trial-level summary (AP, AP50, macro
    rates and summed counts per confidence, mean_accuracy) of one detector on `valid`; with `input_size`
    (the test input's short side and long-side cap) also AP and recall by box size there."""
    preds = remap_predictions(predict_split(detector, valid, images_per_forward, 0.0), detector.classes, gt)
    scores = max_scores(gt, preds)
    long_rows: list[dict[str, Any]] = []
    summary: dict[str, float] = {}
    for c in confidences:
        per_class = []
        for name in classes:
            j = gt.class_index(name)
            m = presence_metrics(gt.presence[:, j], scores[:, j], c).as_dict()
            per_class.append(m)
            long_rows.append({"class_name": name, "confidence": float(c), **m})
        pct = confidence_percent(c)
        for metric in METRICS:
            values = [m[metric] for m in per_class]
            summary[f"{metric}_{pct}"] = (
                int(sum(values)) if metric in COUNT_METRICS else float(np.mean(values))
            )
    accuracies = [summary[f"accuracy_{confidence_percent(c)}"] for c in confidences]
    summary["mean_accuracy"] = float(np.mean(accuracies))
    ap = coco_ap(gt, preds)
    summary["AP"], summary["AP50"] = float(ap["AP"]), float(ap["AP50"])
    if input_size is not None:
        by_size = by_size_summary(coco_ap_by_size(gt, preds, *input_size))
        summary.update({k: v for k, v in by_size.items() if k.startswith(("AP_", "recall50_"))})
    return summary, long_rows


def read_trial_result(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """A finished trial's result, or None when missing, unreadable or made under another fingerprint."""
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if result.get("format") != RESULT_FORMAT or result.get("fingerprint") != fingerprint:
        return None
    return result


def training_groups(todo: list[TrialParams], share: bool) -> list[list[TrialParams]]:
    """Trials trained together: one run per BATCH_SIZE_PER_IMAGE when sharing, else one run each."""
    if not share:
        return [[p] for p in todo]
    by_bspi: dict[int, list[TrialParams]] = {}
    for p in todo:
        by_bspi.setdefault(p.batch_size_per_image, []).append(p)
    return [sorted(g, key=lambda p: p.max_iter) for _, g in sorted(by_bspi.items())]


def trials_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Trial rows as a DataFrame with the grid table's columns and stable dtypes."""
    df = pd.DataFrame(rows, columns=columns)
    dtypes: dict[str, Any] = {}
    for col in columns:
        if col in _STRING_COLUMNS:
            dtypes[col] = pd.StringDtype()
        elif col in _INT_COLUMNS or col.split("_")[0] in COUNT_METRICS:
            dtypes[col] = "int64"
        else:
            dtypes[col] = "float64"
    return df.astype(dtypes)


@dataclass
class TrainingRun:
    """One training run of the grid: its trials share it when there is more than one."""

    trials: list[TrialParams]
    runs_dir: Path
    done: int = 0
    result: TrainResult | None = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path:
        return self.runs_dir / (self.name or self.top.key)

    @property
    def top(self) -> TrialParams:
        return self.trials[-1]

    @property
    def name(self) -> str:
        """`roi<b>_it<n>` for a shared run, "" for a trial trained alone."""
        return f"roi{self.top.batch_size_per_image}_it{self.top.max_iter}" if len(self.trials) > 1 else ""

    @property
    def snapshots(self) -> list[int]:
        return [p.max_iter for p in self.trials[:-1]]


def shared_run_name(p: TrialParams, settings: Settings, backend: DetectorBackend) -> str:
    """The shared run `p` belongs to in the whole grid ("" if trained alone): the same label whether the grid
    ran in one go or a resumed run retrained the trial with only some of its run's trials left."""
    iters = settings.grid.max_iter
    if len(iters) < 2 or not (settings.train.share_grid_prefix and backend.prefix_stable):
        return ""
    return f"roi{p.batch_size_per_image}_it{max(iters)}"


def finish_trial(
    backend: DetectorBackend,
    run: TrainingRun,
    p: TrialParams,
    valid: CocoSplit,
    gt: GroundTruth,
    classes: list[str],
    settings: Settings,
    trials_dir: Path,
    fingerprints: dict[str, str],
) -> dict[str, Any]:
    """Move the trial's checkpoint into place, evaluate it on valid and save its result atomically."""
    assert run.result is not None
    trial_dir = trials_dir / p.key
    trial_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = trial_dir / CHECKPOINT_FILE
    shutil.move(str(run.result.checkpoints[p.max_iter]), checkpoint)
    detector = backend.load(checkpoint)
    summary, long_rows = evaluate_detector(
        detector,
        valid,
        gt,
        classes,
        settings.confidences,
        settings.detection.images_per_forward,
        (settings.train.min_size_test, settings.train.max_size_test),
    )
    row = {
        "trial": p.key,
        "max_iter": p.max_iter,
        "batch_size_per_image": p.batch_size_per_image,
        "ims_per_batch": settings.train.ims_per_batch,
        "base_lr": settings.train.scaled_base_lr(),
        "architecture": settings.train.architecture,
        "backend": backend.name,
        "device": str(getattr(detector, "device", run.result.info.get("device", ""))),
        "shared_run": shared_run_name(p, settings, backend),
        "train_seconds": float(run.result.seconds[p.max_iter]),
        **summary,
        "checkpoint": DataRoot(settings.data_root).display(checkpoint),
    }
    result = {
        "format": RESULT_FORMAT,
        "fingerprint": fingerprints[p.key],
        "row": row,
        "long": [
            {"trial": p.key, "max_iter": p.max_iter, "batch_size_per_image": p.batch_size_per_image, **r}
            for r in long_rows
        ],
    }
    atomic_write_json(trial_dir / RESULT_FILE, result)
    return result


def finished_trial(trials_dir: Path, params: TrialParams, fingerprint: str) -> dict[str, Any] | None:
    """A trial's saved result when it finished with this fingerprint, else None.

    The result is written after the checkpoint, so it marks a finished trial; the checkpoint itself may have
    been removed since by retention (`retention.py`) when the trial lost.
    """
    return read_trial_result(trials_dir / params.key / RESULT_FILE, fingerprint)


@dataclass
class TrialPlan:
    """Every trial of the grid, the valid ground truth, and which trials are finished or still to do."""

    params: list[TrialParams]
    gt: GroundTruth
    fingerprints: dict[str, str]
    finished: dict[str, dict[str, Any]]
    todo: list[TrialParams]


def plan_trials(
    settings: Settings,
    train: CocoSplit,
    valid: CocoSplit,
    classes: Sequence[str],
    trials_dir: Path,
    say: LogFn,
) -> TrialPlan:
    """Check the classes against valid, fingerprint every trial and find those a killed run already finished."""
    gt = load_ground_truth(valid.json_path)
    for name in classes:
        gt.class_index(name)  # every trained class must be a category of the valid split
    params = [TrialParams(m, b) for b in settings.grid.batch_size_per_image for m in settings.grid.max_iter]
    # the split files are hashed once for all trials
    hashes = sha256_file(train.json_path), sha256_file(valid.json_path)
    fingerprints = {p.key: trial_fingerprint(settings, p, classes, *hashes) for p in params}
    finished: dict[str, dict[str, Any]] = {}
    todo: list[TrialParams] = []
    for p in params:
        remove_stale_temporaries(trials_dir / p.key)
        found = finished_trial(trials_dir, p, fingerprints[p.key])
        if found is not None:
            finished[p.key] = found
            say(f"trial {p.key}: finished earlier, skipped")
        else:
            todo.append(p)
    return TrialPlan(params, gt, fingerprints, finished, todo)
