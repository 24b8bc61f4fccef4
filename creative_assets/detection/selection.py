"""The chosen model and why: the grid's tables for plots, the best confidence, lineage and the chosen row.

Dagster-free, so the rules the `grid_search` and `chosen_model` assets publish are unit-tested here: the
asset reads its inputs, calls these, and writes metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from creative_assets.detection.baseline import BaselineVerdict
from creative_assets.detection.box_stats import SIZE_BIN_NAMES, SIZE_BINS_PX
from creative_assets.layout import DataRoot
from creative_assets.settings import Settings

NO_MODEL = "no model"
CHOSEN_COLUMNS = [
    "brand", "object", "status", "model_id", "checkpoint", "backend", "architecture", "classes", "trial",
    "max_iter", "batch_size_per_image", "base_lr", "mean_accuracy", "AP", "AP50", "always_absent_accuracy",
    "haar_accuracy", "test_accuracy", "test_always_absent_accuracy", "beats_baseline", "baseline_verdict",
    "dataset_fingerprint", "code_version", "profile", "device",
]  # fmt: skip
_CHOSEN_FLOATS = [
    "base_lr", "mean_accuracy", "AP", "AP50", "always_absent_accuracy", "haar_accuracy", "test_accuracy",
    "test_always_absent_accuracy",
]  # fmt: skip
_CHOSEN_INTS = ["max_iter", "batch_size_per_image"]


def grid_folder(cfg: Settings, brand: str, object_name: str, fingerprint: str) -> Path:
    """Trials live under a folder keyed by dataset and training settings, so a changed input never resumes."""
    spec = json.dumps(
        {"train": cfg.train.model_dump(mode="json"), "confidences": cfg.confidences, "fp": fingerprint},
        sort_keys=True,
    )
    key = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return DataRoot(cfg.data_root).models(brand, object_name) / "grid" / key


def long_accuracy(trials: pd.DataFrame, confidences: Sequence[float]) -> pd.DataFrame:
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


def confusions_of(trial: pd.Series, confidences: Sequence[float]) -> dict[float, np.ndarray]:
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
    """A trial's valid AP and recall at IoU 0.5 by box size, one row per size bin (`box_stats.SIZE_BINS_PX`)."""
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


def best_confidence(best: pd.Series, confidences: Sequence[float]) -> tuple[int, float]:
    """The confidence (in %) at which the chosen trial's valid accuracy is highest, and that accuracy; a tie
    goes to the lower confidence. The asset checks compare there (the threshold sweep refines it later)."""
    by_conf = {int(round(c * 100)): float(best[f"accuracy_{int(round(c * 100))}"]) for c in confidences}
    primary = max(by_conf, key=lambda p: (by_conf[p], -p))
    return primary, by_conf[primary]


def model_lineage(
    best: pd.Series,
    brand: str,
    object_name: str,
    classes: Sequence[str],
    dataset_fingerprint: str,
    code_version: str,
    cfg: Settings,
) -> dict[str, Any]:
    """What a published model was trained on and with: the trial, its solver values, its validation metrics,
    the dataset fingerprint, the code version, the profile and the training settings."""
    return {
        "brand": brand,
        "object": object_name,
        "backend": str(best["backend"]),
        "architecture": str(best["architecture"]),
        "classes": list(classes),
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
        "dataset_fingerprint": dataset_fingerprint,
        "code_version": code_version,
        "profile": cfg.profile,
        "train_settings": cfg.train.model_dump(mode="json"),
    }


def chosen_row(
    best: pd.Series,
    lineage: Mapping[str, Any],
    published: Mapping[str, Any],
    always_absent: float,
    haar: float | None,
    verdict: BaselineVerdict,
) -> dict[str, Any]:
    """The chosen_model row of a published model (`published`: the model store's record) with its verdict
    against "always absent" on the held-out test split."""
    return {
        "brand": lineage["brand"],
        "object": lineage["object"],
        "status": "model",
        "model_id": published["model_id"],
        "checkpoint": published["checkpoint"],
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
        "always_absent_accuracy": always_absent,
        "haar_accuracy": haar,
        "test_accuracy": verdict.test_accuracy,
        "test_always_absent_accuracy": verdict.always_absent_accuracy,
        "beats_baseline": verdict.beats,
        "baseline_verdict": verdict.words(),
        "dataset_fingerprint": lineage["dataset_fingerprint"],
        "code_version": lineage["code_version"],
        "profile": lineage["profile"],
        "device": str(best.get("device", "")),
    }


def chosen_frame(rows: list[dict]) -> pd.DataFrame:
    """A chosen_model table with stable dtypes."""
    df = pd.DataFrame(rows, columns=CHOSEN_COLUMNS)
    for c in CHOSEN_COLUMNS:
        if c == "beats_baseline":
            df[c] = df[c].astype("boolean")  # <NA> for "no model"
        elif c in _CHOSEN_FLOATS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif c in _CHOSEN_INTS:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
        else:
            df[c] = df[c].astype("string")
    return df


def no_model_row(brand: str, object_name: str, profile: str) -> pd.DataFrame:
    """The explicit 'no model' record (a None output would vanish from the detections fan-in)."""
    row = {c: None for c in CHOSEN_COLUMNS}
    row.update({"brand": brand, "object": object_name, "status": NO_MODEL, "profile": profile})
    return chosen_frame([row])
