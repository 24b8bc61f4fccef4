"""The code location as Dagster sees it: which steps take the accelerator, and the assets' code versions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from creative_assets.definitions import defs
from creative_assets.jobs import ACCELERATOR_TAG

# Steps that train or run a detector: the executor runs one of them at a time.
ACCELERATOR_ASSETS = {"grid_search", "optimal_thresholds", "detections"}


def test_every_training_and_inference_step_carries_the_accelerator_tag() -> None:
    for name in sorted(ACCELERATOR_ASSETS):
        assert defs.get_assets_def(dg.AssetKey(name)).op.tags.get(ACCELERATOR_TAG) == "1", name


def test_the_accelerator_tag_is_named_once() -> None:
    package = Path(__file__).parents[1] / "creative_assets"
    literal = f'"{ACCELERATOR_TAG}"'
    assert [p.name for p in package.rglob("*.py") if literal in p.read_text(encoding="utf-8")] == ["jobs.py"]
