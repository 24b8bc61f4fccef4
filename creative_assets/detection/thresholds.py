"""Per-class score thresholds: sweep on the valid split, pick one, report it on the held-out test split.

Every number comes from `evaluation.presence_arrays`, the same code behind `presence_metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from creative_assets.detection.backend import Predictions
from creative_assets.detection.evaluation import (
    COUNT_COLUMNS,
    RATE_COLUMNS,
    GroundTruth,
    max_scores,
    presence_arrays,
    presence_metrics,
)

SWEEP_COLUMNS = ["threshold", "accuracy", "precision", "recall", "f1", "tp", "fp", "tn", "fn"]

_METRICS = ["accuracy", "precision", "recall", "f1"]
OPTIMAL_THRESHOLD_COLUMNS = [
    "class_name",
    "threshold",
    *[f"valid_{m}" for m in _METRICS],
    *[f"test_{m}" for m in _METRICS],
    "valid_positives",
    "test_positives",
    "valid_n",
    "test_n",
]

# Two accuracies (or F1s) closer than this are the same number reached by different float paths.
_TIE_TOLERANCE = 1e-12


def sweep_thresholds(truth: np.ndarray, scores: np.ndarray, thresholds: Sequence[float]) -> pd.DataFrame:
    """Presence metrics of one class at every threshold (ascending), one row each (SWEEP_COLUMNS)."""
    thr = np.sort(np.asarray(thresholds, dtype=np.float64))
    a = presence_arrays(truth, scores, thr)
    df = pd.DataFrame({"threshold": thr, **{k: a[k] for k in SWEEP_COLUMNS[1:]}})
    return df.astype({c: "int64" for c in COUNT_COLUMNS if c != "n"} | {c: "float64" for c in RATE_COLUMNS})


def _ties(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    best = values[candidates].max()
    return candidates & (values >= best - _TIE_TOLERANCE)


def choose_threshold(sweep: pd.DataFrame) -> float:
    """The threshold with the highest accuracy; ties by highest F1, then the middle of the widest tied run.

    1. Highest accuracy (the case study's criterion).
    2. Among equal accuracies, highest F1: at the same number of correct images, prefer getting the present
       images right over the absent ones, so a rare class is not "solved" by never predicting it.
    3. Still tied: the thresholds left form runs of neighbours in the sweep (a plateau where nothing changes
       on valid). Take the widest run and its middle threshold (the lower of the two middles when the run
       has even length): it sits farthest from the edges where the metrics change, so a small drift of
       scores on new data moves it least. Equally wide runs: the one with the lowest thresholds.
    A NaN accuracy (an empty split) loses to any number; if all are NaN the rule still returns a threshold.
    """
    if sweep.empty:
        raise ValueError("cannot choose a threshold from an empty sweep")
    sweep = sweep.sort_values("threshold", kind="stable").reset_index(drop=True)
    accuracy = sweep["accuracy"].to_numpy(dtype=np.float64, na_value=np.nan)
    f1 = sweep["f1"].to_numpy(dtype=np.float64, na_value=np.nan)
    accuracy = np.where(np.isnan(accuracy), -np.inf, accuracy)
    f1 = np.where(np.isnan(f1), -np.inf, f1)

    tied = _ties(accuracy, np.ones(len(sweep), dtype=bool))
    tied = _ties(f1, tied)

    best_start, best_len, start = 0, 0, None
    for i, t in enumerate([*tied, False]):
        if t and start is None:
            start = i
        elif not t and start is not None:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = None
    return float(sweep["threshold"].iloc[best_start + (best_len - 1) // 2])


def optimal_thresholds(
    gt_valid: GroundTruth,
    preds_valid: Mapping[int, Predictions],
    gt_test: GroundTruth,
    preds_test: Mapping[int, Predictions],
    thresholds: Sequence[float],
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per class: the threshold chosen on valid, its metrics on valid and test, and the class's valid sweep.

    Returns a table with OPTIMAL_THRESHOLD_COLUMNS (one row per class) and {class_name: sweep}.
    """
    if list(gt_valid.classes) != list(gt_test.classes):
        raise ValueError(
            f"valid and test splits list different classes: {gt_valid.classes} vs {gt_test.classes}"
        )
    scores_valid = max_scores(gt_valid, preds_valid)
    scores_test = max_scores(gt_test, preds_test)
    rows, sweeps = [], {}
    for k, name in enumerate(gt_valid.classes):
        sweep = sweep_thresholds(gt_valid.presence[:, k], scores_valid[:, k], thresholds)
        chosen = choose_threshold(sweep)
        valid = presence_metrics(gt_valid.presence[:, k], scores_valid[:, k], chosen)
        test = presence_metrics(gt_test.presence[:, k], scores_test[:, k], chosen)
        rows.append(
            {
                "class_name": name,
                "threshold": chosen,
                **{f"valid_{m}": getattr(valid, m) for m in _METRICS},
                **{f"test_{m}": getattr(test, m) for m in _METRICS},
                "valid_positives": valid.tp + valid.fn,
                "test_positives": test.tp + test.fn,
                "valid_n": valid.n,
                "test_n": test.n,
            }
        )
        sweeps[name] = sweep
    table = pd.DataFrame(rows, columns=OPTIMAL_THRESHOLD_COLUMNS)
    dtypes = {c: "float64" for c in OPTIMAL_THRESHOLD_COLUMNS[1:10]}
    dtypes |= {c: "int64" for c in OPTIMAL_THRESHOLD_COLUMNS[10:]}
    dtypes["class_name"] = pd.StringDtype()
    return table.astype(dtypes), sweeps
