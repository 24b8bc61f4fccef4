"""The whole asset graph for one brand on the detectron2 backend (smoke profile, its ResNet-18 FPN).

Skipped where detectron2 does not import; `.ci/run` installs it when a wheel for this interpreter is
available, and then sets CREATIVE_ASSETS_REQUIRE_DETECTRON2 so a missing detectron2 fails instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

pytest.importorskip(
    "detectron2", reason="detectron2 is not installed (it is not on PyPI; see README: detectron2)"
)

from creative_assets.demo.synthetic import generate_demo_data  # noqa: E402
from creative_assets.instance_config import ensure_dagster_home  # noqa: E402
from creative_assets.layout import DataRoot  # noqa: E402
from creative_assets.pipeline_runs import _materialize, run_everything  # noqa: E402
from creative_assets.settings import load_settings  # noqa: E402
from creative_assets.tables.warehouse import read_table  # noqa: E402

pytestmark = [pytest.mark.detectron2, pytest.mark.slow]

BRAND = "acme"
# The objects must be the session's (conftest): object partitions are read when the code location loads.
SETTINGS = """\
objects:
  - {name: branding, categories: [logo, product, brand_cue]}
  - {name: face, categories: [face, smile], pooled: true}
train:
  backend: detectron2
"""


@pytest.fixture(scope="module")
def d2(tmp_path_factory: pytest.TempPathFactory):
    """acme materialised end to end with train.backend detectron2 in its own data root and instance."""
    base = tmp_path_factory.mktemp("detectron2_pipeline")
    root = base / "data"
    generate_demo_data(
        root, seed=0, brands=(BRAND,), labelled_images=14, unlabelled_images=3, labelled_videos=1,
        unlabelled_videos=1, image_size=(128, 96), video_seconds=2.0,
    )  # fmt: skip
    (root / "creative_assets.yaml").write_text(SETTINGS)
    home = base / "dagster_home"
    ensure_dagster_home(home)
    settings = load_settings(root, "smoke", env={})
    instance = dg.DagsterInstance.local_temp(str(home))
    run_everything(instance, settings, [BRAND])
    return DataRoot(root), settings, instance


def test_the_cpu_profile_on_detectron2_trains_its_resnet18(d2):
    _, settings, _ = d2
    assert (settings.train.backend, settings.train.architecture) == ("detectron2", "resnet18")


def test_every_model_of_the_brand_is_a_detectron2_model(d2):
    root, _, _ = d2
    for obj in ("branding", "face"):
        chosen = read_table(root.warehouse("chosen_model", BRAND, obj)).iloc[0]
        assert (chosen["status"], chosen["backend"], chosen["architecture"]) == (
            "model", "detectron2", "resnet18"
        )  # fmt: skip
        config = json.loads((root.models(BRAND, obj) / "chosen" / "config.json").read_text())
        assert config["backend"] == "detectron2"


def test_grid_has_every_trial_scored_by_the_detectron2_backend(d2):
    root, settings, _ = d2
    grid = read_table(root.warehouse("grid_search", BRAND, "branding"))
    assert len(grid) == len(settings.grid.max_iter) * len(settings.grid.batch_size_per_image)
    assert set(grid["backend"]) == {"detectron2"}
    assert grid[["AP", "AP50", "accuracy_20", "accuracy_80"]].notna().all().all()


def test_losing_trial_checkpoints_are_removed_once_the_winner_is_published(d2):
    root, _, _ = d2
    grid = read_table(root.warehouse("grid_search", BRAND, "branding"))
    chosen = read_table(root.warehouse("chosen_model", BRAND, "branding")).iloc[0]
    kept = sorted(p.parent.name for p in root.models(BRAND, "branding").glob("grid/*/trials/*/model.pth"))
    results = list(root.models(BRAND, "branding").glob("grid/*/trials/*/result.json"))
    assert kept == [chosen["trial"]]
    assert len(results) == len(grid)  # every trial's result stays
    assert (root.root / chosen["checkpoint"]).is_file()


def test_a_rerun_after_retention_trains_nothing_and_gives_the_same_grid(d2):
    root, settings, instance = d2
    results = sorted(root.models(BRAND, "branding").glob("grid/*/trials/*/result.json"))
    before_mtimes = [p.stat().st_mtime_ns for p in results]
    grid_before = read_table(root.warehouse("grid_search", BRAND, "branding"))
    _materialize(instance, ["grid_search", "chosen_model"], f"{BRAND}|branding", settings)
    assert [p.stat().st_mtime_ns for p in results] == before_mtimes
    pd.testing.assert_frame_equal(read_table(root.warehouse("grid_search", BRAND, "branding")), grid_before)


def test_thresholds_detections_and_features_come_from_the_detectron2_models(d2):
    root, _, _ = d2
    th = read_table(root.warehouse("optimal_thresholds", BRAND, "branding"))
    assert list(th["class_name"]) == ["logo", "product", "brand_cue"]
    assert th["threshold"].between(0.2, 0.99).all()
    chosen_ids = {
        read_table(root.warehouse("chosen_model", BRAND, o)).iloc[0]["model_id"] for o in ("branding", "face")
    }
    detections = read_table(root.warehouse("detections", BRAND))
    assert set(detections["model_id"]) <= chosen_ids
    manifest = read_table(root.warehouse("creative_manifest", BRAND))
    features = read_table(root.warehouse("creative_features", BRAND))
    assert sorted(features["creative_id"]) == sorted(manifest["creative_id"])
    panel = read_table(root.warehouse("mmm_features", BRAND))
    assert len(panel) > 0 and (pd.to_datetime(panel["week_start"]).dt.day_of_week == 0).all()


def test_grid_metadata_says_which_backend_and_why(d2):
    root, _, instance = d2
    event = instance.get_latest_materialization_event(dg.AssetKey("grid_search"))
    assert event is not None
    meta = event.asset_materialization.metadata
    assert meta["backend"].value == "detectron2"
    assert meta["backend_choice"].value == "train.backend: detectron2"
    assert Path(root.root).is_dir()
