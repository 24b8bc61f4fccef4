"""The code location as Dagster sees it: which steps take the accelerator, and the assets' code versions."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

# The resolver behind the UI's "stale" badge (no public entry point for it in Dagster 1.13).
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from creative_assets.assets.ingest import creative_manifest
from creative_assets.definitions import defs
from creative_assets.jobs import ACCELERATOR_TAG
from creative_assets.version import ASSET_CODE_VERSIONS
from creative_assets_tests.support.asset_runs import (
    BRAND,
    instance_with_brands,
    smoke_settings,
    tiny_data_root,
)

# Steps that train or run a detector: the executor runs one of them at a time.
ACCELERATOR_ASSETS = {"grid_search", "optimal_thresholds", "detections"}


def test_every_training_and_inference_step_carries_the_accelerator_tag() -> None:
    for name in sorted(ACCELERATOR_ASSETS):
        assert defs.get_assets_def(dg.AssetKey(name)).op.tags.get(ACCELERATOR_TAG) == "1", name


def test_the_accelerator_tag_is_named_once() -> None:
    package = Path(__file__).parents[1] / "creative_assets"
    literal = f'"{ACCELERATOR_TAG}"'
    assert [p.name for p in package.rglob("*.py") if literal in p.read_text(encoding="utf-8")] == ["jobs.py"]


def test_every_asset_declares_its_code_version() -> None:
    graph = defs.resolve_asset_graph()
    # raw sources have data versions (from their files), not code versions
    versions = {
        key.to_user_string(): graph.get(key).code_version
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable
    }
    assert versions == ASSET_CODE_VERSIONS


def _manifest_status(instance: dg.DagsterInstance, asset: dg.AssetsDefinition, root: Path) -> StaleStatus:
    resources = {"settings": smoke_settings(root), "warehouse_io_manager": dg.InMemoryIOManager()}
    graph = dg.Definitions(assets=[asset], resources=resources).resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return resolver.get_status(dg.AssetKey("creative_manifest"), BRAND)


def test_a_new_code_version_marks_the_materialised_asset_stale(tmp_path: Path) -> None:
    root = tiny_data_root(tmp_path / "data")
    instance = instance_with_brands(BRAND)
    dg.materialize_to_memory(
        [creative_manifest],
        partition_key=BRAND,
        instance=instance,
        resources={"settings": smoke_settings(root)},
    )
    bumped = creative_manifest.map_asset_specs(lambda spec: spec.replace_attributes(code_version="bumped"))

    assert _manifest_status(instance, creative_manifest, root) == StaleStatus.FRESH
    assert _manifest_status(instance, bumped, root) == StaleStatus.STALE
