"""Declarative automation without a daemon: which assets a change under raw/ requests on the next tick.

The graph starts fully materialised for one brand (one reported materialisation per asset partition, as an
external run would record it) with the raw files' data versions recorded by the raw-files sensor's own
function. Then a file changes, the sensor records what changed, and `dg.evaluate_automation_conditions` runs the
conditions of the real code location's assets, as the automation sensor does each tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from creative_assets.automation import FOLLOW_UPSTREAM_ASSETS, TRAINING_ASSETS
from creative_assets.definitions import all_assets, build_definitions
from creative_assets.layout import DataRoot
from creative_assets.partitions import brand_object_key, object_names
from creative_assets.sensors import raw_observations
from creative_assets_tests.support.asset_runs import instance_with_brands

BRAND = "acme"
PAIR_ASSETS = {*TRAINING_ASSETS, "labelling_queue"}
INGEST = {"creative_manifest", "video_frames", "labels"}
DETECT_AND_TABLES = {
    "detections",
    "creative_features",
    "mmm_features",
    "mmm_panel",
    "mmm_unmatched_creatives",
}
MMM = {"mmm_features", "mmm_panel", "mmm_unmatched_creatives"}


@dataclass
class Graph:
    root: Path
    instance: dg.DagsterInstance
    defs: dg.Definitions
    cursor: object = None

    def record_raw_changes(self) -> int:
        """What the raw-files sensor does on its tick: record the raw sources whose data version changed."""
        observations = raw_observations(self.instance, DataRoot(self.root), [BRAND])
        for observation in observations:
            self.instance.report_runless_asset_event(observation)
        return len(observations)

    def tick(self) -> dict[str, set[str]]:
        """One automation tick: asset name → the partitions it requests."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return {
            key.to_user_string(): {str(p) for p in result.get_requested_partitions(key)}
            for key in self.defs.resolve_asset_graph().get_all_asset_keys()
            if result.get_num_requested(key)
        }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _materialised_keys() -> list[tuple[dg.AssetKey, bool]]:
    """(key, keyed by brand × object) of every asset the graph materialises (not the raw sources)."""
    out = []
    for a in all_assets:
        if isinstance(a, dg.AssetsDefinition) and a.is_materializable:
            pairs = isinstance(a.partitions_def, dg.MultiPartitionsDefinition)
            out.extend((key, pairs) for key in a.keys)
    return out


def _pairs() -> list[str]:
    return [str(brand_object_key(BRAND, o)) for o in object_names()]


def _graph(tmp_path: Path, train: bool) -> Graph:
    root = tmp_path / "data"
    _write(root / "raw" / BRAND / "creatives" / "spring.jpg", b"jpeg bytes")
    _write(root / "raw" / BRAND / "creatives" / "videos" / "launch.mp4", b"mp4 bytes")
    _write(root / "raw" / BRAND / "labels" / "coco.json", b'{"images": []}')
    _write(root / "raw" / "impressions.csv", b"date,brand,creative_id,impressions\n")
    graph = Graph(root, instance_with_brands(BRAND), build_definitions(train_automation=train))
    assert graph.record_raw_changes() == 3  # creatives, labels, impressions: first versions
    for key, pairs in _materialised_keys():
        for partition in _pairs() if pairs else [BRAND]:
            graph.instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
    assert graph.tick() == {}  # the first tick only sets the cursor
    return graph


@pytest.fixture
def graph(tmp_path: Path) -> Graph:
    return _graph(tmp_path, train=False)


def test_the_assets_automation_follows_are_the_ingest_detect_and_table_assets():
    keys = {k.to_user_string() for k, _ in _materialised_keys()}
    assert set(FOLLOW_UPSTREAM_ASSETS) == INGEST | DETECT_AND_TABLES
    assert set(FOLLOW_UPSTREAM_ASSETS) | PAIR_ASSETS == keys


def test_nothing_is_requested_while_no_raw_file_changes(graph: Graph):
    assert graph.record_raw_changes() == 0
    assert graph.tick() == {}


def test_a_new_creative_reruns_ingestion_detection_and_tables_of_its_brand_and_no_training(graph: Graph):
    _write(graph.root / "raw" / BRAND / "creatives" / "summer.png", b"png bytes")
    assert graph.record_raw_changes() == 1
    assert graph.tick() == {name: {BRAND} for name in INGEST | DETECT_AND_TABLES}
    assert graph.tick() == {}  # requested once, not again while nothing new happened


def test_a_removed_creative_reruns_the_same_assets(graph: Graph):
    (graph.root / "raw" / BRAND / "creatives" / "spring.jpg").unlink()
    assert graph.record_raw_changes() == 1
    assert graph.tick() == {name: {BRAND} for name in INGEST | DETECT_AND_TABLES}


def test_an_unreadable_creatives_folder_requests_nothing(graph: Graph):
    (graph.root / "raw" / BRAND / "creatives").rename(graph.root / "raw" / BRAND / "moved")
    assert graph.record_raw_changes() == 0  # absence is not removal
    assert graph.tick() == {}


def test_a_changed_label_file_rereads_the_labels_only(graph: Graph):
    _write(graph.root / "raw" / BRAND / "labels" / "azure.jsonl", b"{}\n")
    assert graph.record_raw_changes() == 1
    assert graph.tick() == {"labels": {BRAND}}


def test_a_new_impressions_file_rebuilds_the_mmm_tables_only(graph: Graph):
    _write(
        graph.root / "raw" / "impressions.csv", b"date,brand,creative_id,impressions\n2026-01-05,acme,a,1\n"
    )
    assert graph.record_raw_changes() == 1
    assert graph.tick() == {name: {BRAND} for name in MMM}


def _labels_rematerialised(graph: Graph, version: str) -> None:
    graph.instance.report_runless_asset_event(
        dg.AssetMaterialization("labels", partition=BRAND, tags={"dagster/data_version": version})
    )


def test_with_training_automation_new_label_content_retrains_every_pair_of_the_brand(tmp_path: Path):
    graph = _graph(tmp_path, train=True)
    _write(graph.root / "raw" / BRAND / "labels" / "azure.jsonl", b"{}\n")
    graph.record_raw_changes()
    assert graph.tick() == {"labels": {BRAND}}  # training waits for the labels' new data version
    _labels_rematerialised(graph, "labels-v2")
    assert graph.tick() == {"coco_datasets": set(_pairs())}


def test_with_training_automation_labels_reread_unchanged_retrain_nothing(tmp_path: Path):
    graph = _graph(tmp_path, train=True)
    _labels_rematerialised(graph, "labels-v1")
    graph.tick()
    _labels_rematerialised(graph, "labels-v1")  # a new creative: labels re-read, same rows, same version
    assert "coco_datasets" not in graph.tick()


def test_without_training_automation_new_label_content_retrains_nothing(graph: Graph):
    _labels_rematerialised(graph, "labels-v2")
    assert not set(graph.tick()) & PAIR_ASSETS


def test_observing_the_raw_sources_gives_the_versions_the_sensor_records(graph: Graph):
    # `observe` is what "Observe" in the UI runs (no public import in Dagster 1.13)
    from dagster._core.definitions.observe import observe

    from creative_assets.assets.raw import RAW_ASSETS
    from creative_assets.sensors import DATA_VERSION_TAG, current_raw_versions
    from creative_assets_tests.support.asset_runs import smoke_settings

    result = observe(RAW_ASSETS, instance=graph.instance, resources={"settings": smoke_settings(graph.root)})
    observed = {
        (o.asset_key.to_user_string(), o.partition): o.tags[DATA_VERSION_TAG]
        for o in (e.asset_observation_data.asset_observation for e in result.get_asset_observation_events())
    }
    assert observed == current_raw_versions(DataRoot(graph.root), [BRAND])
    assert graph.record_raw_changes() == 0  # the same versions: nothing new for the sensor
