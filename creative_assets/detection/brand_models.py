"""The brand's models for detection: every published chosen model with the per-class thresholds to apply.

One rule, used by every executor: a pair with status "no model" contributes nothing; a model whose
thresholds were not materialised for its version (another `model_id` in `optimal_thresholds`, or none) runs
with the lowest swept threshold for every class, so detection never waits on the threshold sweep and keeps
every detection the sweep could later select. A model carries `chosen_model`'s verdict against the "always
absent" baseline on the test split, which its detections repeat in `model_beats_baseline`; a chosen_model
table written before the verdict existed has none, and detection asks for it to be re-materialised rather
than guess.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class PublishedModel:
    """One chosen model as plain data: what a worker needs to load it and label its detections."""

    object_name: str
    model_id: str
    backend: str
    checkpoint: str
    classes: tuple[str, ...]
    thresholds: dict[str, float]
    thresholds_swept: bool  # False when the fallback applies
    beats_baseline: bool  # chosen_model's verdict on the held-out test split


def brand_models(
    chosen: Sequence[pd.DataFrame], thresholds: Sequence[pd.DataFrame], fallback: float
) -> list[PublishedModel]:
    """The published models among `chosen` (one chosen_model table per object) with their thresholds."""
    by_model: dict[tuple[str, str], dict[str, float]] = {}
    for table in thresholds:
        for r in table.itertuples():
            by_model.setdefault((str(r.object), str(r.model_id)), {})[str(r.class_name)] = float(r.threshold)
    models = []
    for table in chosen:
        if table.empty:
            continue
        row = table.iloc[0]
        if row["status"] != "model":
            continue
        classes = tuple(json.loads(str(row["classes"])))
        swept = by_model.get((str(row["object"]), str(row["model_id"])))
        models.append(
            PublishedModel(
                object_name=str(row["object"]),
                model_id=str(row["model_id"]),
                backend=str(row["backend"]),
                checkpoint=str(row["checkpoint"]),
                classes=classes,
                thresholds=swept if swept is not None else dict.fromkeys(classes, float(fallback)),
                thresholds_swept=swept is not None,
                beats_baseline=_beats_baseline(row),
            )
        )
    return models


def _beats_baseline(row: pd.Series) -> bool:
    value = row.get("beats_baseline", pd.NA)
    if pd.isna(value):
        raise ValueError(
            f"chosen_model of {row.get('brand', '?')}|{row['object']} has no baseline verdict (written by an "
            "older version); re-materialise chosen_model for it (nothing is retrained)"
        )
    return bool(value)
