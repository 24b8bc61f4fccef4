"""Shared fixtures: a tiny generated data root run through the whole graph once per session (smoke profile)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from creative_assets.demo.synthetic import generate_demo_data
from creative_assets.instance_config import ensure_dagster_home
from creative_assets.settings import Settings, load_settings
from creative_assets_tests.support.smoke_objects import SMOKE_SETTINGS

SMOKE_BRANDS = ("acme", "globex")


@dataclass
class SmokePipeline:
    """A data root materialised end to end, and the Dagster home holding its runs."""

    root: Path
    dagster_home: Path
    settings: Settings
    instance: dg.DagsterInstance


# Object partitions are read from the settings when the code location is imported, so the session's data
# root and its settings file must exist before any test imports creative_assets.partitions.
SESSION_ROOT = Path(tempfile.mkdtemp(prefix="creative_assets_session_")) / "data"
SESSION_ROOT.mkdir(parents=True)
(SESSION_ROOT / "creative_assets.yaml").write_text(SMOKE_SETTINGS)
os.environ["CREATIVE_ASSETS_DATA"] = str(SESSION_ROOT)
os.environ["CREATIVE_ASSETS_PROFILE"] = "smoke"


def make_tiny_demo(root: Path, seed: int = 0) -> None:
    """The smallest demo data that still has every label form, videos and impressions."""
    generate_demo_data(
        root,
        seed=seed,
        brands=SMOKE_BRANDS,
        labelled_images=14,
        unlabelled_images=3,
        labelled_videos=1,
        unlabelled_videos=1,
        image_size=(128, 96),
        video_seconds=2.0,
    )
    (root / "creative_assets.yaml").write_text(SMOKE_SETTINGS)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test: the machine is shared, and one thread keeps results bit-identical."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def smoke_pipeline() -> SmokePipeline:
    """The whole graph materialised for both demo brands with the smoke profile (shared by several tests)."""
    from creative_assets.pipeline_runs import run_everything

    root = SESSION_ROOT
    home = SESSION_ROOT.parent / "dagster_home"
    ensure_dagster_home(home)
    make_tiny_demo(root)
    settings = load_settings(root, "smoke", env={})
    instance = dg.DagsterInstance.local_temp(str(home))
    run_everything(instance, settings, list(SMOKE_BRANDS))
    return SmokePipeline(root=root, dagster_home=home, settings=settings, instance=instance)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's data root and Dagster home."""
    import shutil

    shutil.rmtree(SESSION_ROOT.parent, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Where CI installed detectron2 (CREATIVE_ASSETS_REQUIRE_DETECTRON2=1), its tests may not skip."""
    import importlib.util

    if (
        os.environ.get("CREATIVE_ASSETS_REQUIRE_DETECTRON2") == "1"
        and importlib.util.find_spec("detectron2") is None
    ):
        raise pytest.UsageError(
            "CREATIVE_ASSETS_REQUIRE_DETECTRON2=1 but detectron2 does not import: its tests would be skipped"
        )
