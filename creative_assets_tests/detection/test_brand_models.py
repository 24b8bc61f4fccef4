"""Which models a brand's detection runs, and with which thresholds: one rule for every executor."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from creative_assets.detection.brand_models import brand_models


def chosen(obj: str, status: str = "model", model_id: str = "m1", classes=("logo",)) -> pd.DataFrame:
    return pd.DataFrame(
        [{"object": obj, "status": status, "model_id": model_id, "backend": "torchvision",
          "checkpoint": f"models/acme/{obj}/chosen/model.pth", "classes": json.dumps(list(classes)),
          "beats_baseline": True}]
    )  # fmt: skip


def thresholds(obj: str, model_id: str, **by_class: float) -> pd.DataFrame:
    return pd.DataFrame(
        [{"object": obj, "model_id": model_id, "class_name": c, "threshold": t} for c, t in by_class.items()]
    )


def test_no_model_pairs_contribute_nothing():
    models = brand_models([chosen("logo"), chosen("brand_cue", status="no model")], [], fallback=0.2)
    assert [m.object_name for m in models] == ["logo"]


def test_swept_thresholds_of_the_same_model_version_are_used():
    models = brand_models(
        [chosen("branding", classes=("logo", "product"))],
        [thresholds("branding", "m1", logo=0.63, product=0.41)],
        fallback=0.2,
    )
    assert models[0].thresholds == {"logo": 0.63, "product": 0.41} and models[0].thresholds_swept


def test_thresholds_of_another_model_version_fall_back_to_the_lowest_swept_value():
    models = brand_models(
        [chosen("branding", model_id="m2", classes=("logo", "product"))],
        [thresholds("branding", "m1", logo=0.63, product=0.41)],
        fallback=0.2,
    )
    assert models[0].thresholds == {"logo": 0.2, "product": 0.2} and not models[0].thresholds_swept


def test_a_model_carries_what_a_worker_needs_to_load_it():
    (m,) = brand_models([chosen("face", classes=("face", "smile"))], [], fallback=0.25)
    assert (m.backend, m.checkpoint, m.classes) == (
        "torchvision",
        "models/acme/face/chosen/model.pth",
        ("face", "smile"),
    )


def test_a_model_carries_the_chosen_models_baseline_verdict():
    useless = chosen("logo").assign(beats_baseline=False)
    useful = chosen("product", model_id="m2").assign(beats_baseline=True)
    models = brand_models([useless, useful], [], fallback=0.2)
    assert {m.object_name: m.beats_baseline for m in models} == {"logo": False, "product": True}


def test_a_chosen_model_without_a_verdict_asks_for_rematerialisation():
    old = chosen("logo").drop(columns="beats_baseline")
    with pytest.raises(ValueError, match="re-materialise chosen_model"):
        brand_models([old], [], fallback=0.2)
