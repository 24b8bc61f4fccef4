"""The labelling_queue asset: materialised from in-memory inputs, and the whole round trip on the smoke data —
queue → export → labels dropped into raw/<brand>/labels/ → `creative-assets retrain` → a new model."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from pycocotools.coco import COCO

from creative_assets.assets.labelling import labelling_queue
from creative_assets.labels.export import AZURE_JSONL_FILE, COCO_FILE
from creative_assets.labels.queue import LABELLING_QUEUE
from creative_assets.layout import DataRoot
from creative_assets.partitions import BRAND_PARTITIONS_NAME, brand_object_partitions, brand_partitions
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.settings import DATA_ENV, PROFILE_ENV, load_settings
from creative_assets.tables.schemas import check_schema
from creative_assets.tables.warehouse import read_table

BRAND = "acme"
SETTINGS = """\
objects:
  - {name: branding, categories: [logo, product, brand_cue]}
  - {name: face, categories: [face, smile], pooled: true}
"""


class InMemoryTables(dg.IOManager):
    """Inputs handed over from a dict by asset name; outputs kept in it under `out:<asset>`."""

    def __init__(self, tables: dict[str, object]):
        self.tables = tables

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        self.tables[f"out:{context.asset_key.path[-1]}"] = obj

    def load_input(self, context: dg.InputContext) -> object:
        return self.tables[context.asset_key.path[-1]]


def _write(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 90, np.uint8))


def _inputs(root: DataRoot) -> dict[str, object]:
    """Two stills (b labelled) and three frames of one video, on disk, with hand-chosen detections."""
    for cid in ("a.jpg", "b.jpg"):
        _write(root.creatives(BRAND) / cid, 64, 48)
    for index in (0, 10, 20):
        _write(root.frame_path(BRAND, "v.mp4", index), 64, 48)
    (root.root / "raw" / "impressions.csv").write_text(
        "date,brand,creative_id,impressions\n2024-01-01,acme,a.jpg,100\n2024-01-01,acme,b.jpg,300\n"
        "2024-01-02,acme,v.mp4,600\n2024-01-01,globex,x.jpg,5000\n"
    )
    manifest = pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": ["a.jpg", "b.jpg", "v.mp4"],
            "media_type": ["image", "image", "video"],
            "path": [f"raw/{BRAND}/creatives/{c}" for c in ("a.jpg", "b.jpg", "v.mp4")],
            "width": pd.array([64, 64, 64], dtype="Int64"),
            "height": pd.array([48, 48, 48], dtype="Int64"),
        }
    )
    frames = pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": "v.mp4",
            "frame_index": [0, 10, 20],
            "timestamp_s": [0.0, 1.0, 2.0],
            "path": [f"frames/{BRAND}/v.mp4/{i:06d}.jpg" for i in (0, 10, 20)],
            "width": 64,
            "height": 48,
        }
    )
    columns = ["creative_id", "frame_index", "object", "class_name", "score", "x_min", "y_min", "x_max",
               "y_max", "above_threshold", "model_id"]  # fmt: skip
    detections = pd.DataFrame(
        [
            ("a.jpg", None, "branding", "logo", 0.5, 4, 4, 20, 20, True, "m1"),  # at the threshold
            ("a.jpg", None, "face", "face", 0.9, 30, 10, 50, 40, True, "f1"),  # another model's box
            ("b.jpg", None, "branding", "logo", 0.5, 4, 4, 20, 20, True, "m1"),  # labelled already
            ("v.mp4", 10, "branding", "logo", 0.9, 8, 8, 30, 30, True, "m1"),  # a one-frame flicker
        ],
        columns=columns,
    ).astype({"frame_index": "Int64"})
    thresholds = pd.DataFrame(
        {"class_name": ["logo", "product", "brand_cue"], "threshold": 0.5, "model_id": "m1"}
    )
    labels = pd.DataFrame({"image_path": [f"raw/{BRAND}/creatives/b.jpg"]})
    return {
        "detections": detections,
        "optimal_thresholds": thresholds,
        "creative_manifest": manifest,
        "video_frames": frames,
        "labels": labels,
    }


def _materialise(tmp_path: Path, tables: dict[str, object]) -> dg.ExecuteInJobResult:
    sources = [
        dg.SourceAsset(key=name, partitions_def=brand_partitions, io_manager_key="warehouse_io_manager")
        for name in ("detections", "creative_manifest", "video_frames", "labels")
    ] + [
        dg.SourceAsset(
            key="optimal_thresholds",
            partitions_def=brand_object_partitions,
            io_manager_key="warehouse_io_manager",
        )
    ]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, [BRAND])
    settings = SettingsResource(
        data_root=str(tmp_path), profile="smoke", overrides={"labelling": {"queue_size": 10}}
    )
    return dg.materialize(
        [labelling_queue, *sources],
        partition_key=f"{BRAND}|branding",
        instance=instance,
        resources={"settings": settings, "warehouse_io_manager": InMemoryTables(tables)},
    )


def test_queue_ranks_unlabelled_images_by_uncertainty_times_impression_share(tmp_path: Path):
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)
    tables = _inputs(DataRoot(tmp_path))
    result = _materialise(tmp_path, tables)
    assert result.success
    queue = tables["out:labelling_queue"]
    assert check_schema(queue, LABELLING_QUEUE) == []
    # acme's impressions: a 0.1, b 0.3, v 0.6. Frames 0, 10, 20 each disagree with every neighbour (1.0);
    # a.jpg sits at the threshold (1.0); b.jpg is labelled. v#10 is a direct neighbour of v#0 (left out), v#20
    # counts 0.6 / 2 as v's second frame, still above a's 0.1.
    assert queue["image_path"].tolist() == [
        f"frames/{BRAND}/v.mp4/000000.jpg",
        f"frames/{BRAND}/v.mp4/000020.jpg",
        f"raw/{BRAND}/creatives/a.jpg",
    ]
    assert queue["priority"].tolist() == pytest.approx([0.6, 0.6, 0.1])
    assert queue["temporal_disagreement"].tolist() == [1.0, 1.0, 0.0]
    assert queue["rank"].tolist() == [1, 2, 3]
    meta = result.asset_materializations_for_node("labelling_queue")[0].metadata
    assert meta["top_items"].value.startswith("![top of the labelling queue")
    assert "data:image/png;base64," in meta["top_items"].value


def test_queue_export_pre_annotates_every_models_boxes(tmp_path: Path):
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)
    tables = _inputs(DataRoot(tmp_path))
    assert _materialise(tmp_path, tables).success
    day = datetime.now(UTC).date().isoformat()
    coco = COCO(str(tmp_path / "exports" / BRAND / "branding" / day / COCO_FILE))
    still = next(i for i in coco.dataset["images"] if i["file_name"].endswith("a.jpg"))
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    boxes = sorted(
        (names[a["category_id"]], a["bbox"]) for a in coco.loadAnns(coco.getAnnIds(imgIds=[still["id"]]))
    )
    assert boxes == [("face", [30.0, 10.0, 20.0, 30.0]), ("logo", [4.0, 4.0, 16.0, 16.0])]
    assert list(names.values()) == ["logo", "product", "brand_cue", "face", "smile"]


def test_a_pair_without_a_model_queues_nothing(tmp_path: Path):
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)
    tables = _inputs(DataRoot(tmp_path))
    tables["optimal_thresholds"] = tables["optimal_thresholds"].iloc[0:0]
    assert _materialise(tmp_path, tables).success
    queue = tables["out:labelling_queue"]
    assert len(queue) == 0 and check_schema(queue, LABELLING_QUEUE) == []


# --------------------------------------------------------------------------------------------- round trip


def test_round_trip_queue_export_reimport_retrain(
    smoke_pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from creative_assets.cli import main
    from creative_assets.pipeline_runs import _materialize, ensure_brands

    # a copy, so the session's data root stays as the other tests expect it
    data = tmp_path / "data"
    shutil.copytree(smoke_pipeline.root, data)
    root = DataRoot(data)
    cfg = load_settings(data, "smoke", env={})
    instance = dg.DagsterInstance.ephemeral()
    ensure_brands(instance, ["acme", "globex"])
    for brand in ("acme", "globex"):
        _materialize(instance, ["labelling_queue"], f"{brand}|branding", cfg)

    # every partition reads back as one Hive dataset
    hive = ds.dataset(root.warehouse("labelling_queue"), format="parquet", partitioning="hive").to_table()
    queue = read_table(root.warehouse("labelling_queue", "acme", "branding"), LABELLING_QUEUE)
    globex = read_table(root.warehouse("labelling_queue", "globex", "branding"))
    assert hive.num_rows == len(queue) + len(globex) and len(queue) > 0
    labelled_before = read_table(root.warehouse("labels", "acme"))
    assert not set(queue["image_path"]) & set(labelled_before["image_path"])

    # the export loads in pycocotools; a labeller accepts the boxes and draws one more on the first image
    task = root.exports("acme", "branding", datetime.now(UTC).date().isoformat())
    coco = COCO(str(task / COCO_FILE))
    assert [im["file_name"] for im in coco.dataset["images"]] == queue["image_path"].tolist()
    labelled = json.loads((task / COCO_FILE).read_text())
    first = labelled["images"][0]
    labelled["annotations"].append(
        {
            "id": 10_000,
            "image_id": first["id"],
            "category_id": 1,
            "bbox": [2, 2, 20, 16],
            "area": 320,
            "iscrowd": 0,
        }
    )
    (root.labels("acme") / "round1_cvat.json").write_text(json.dumps(labelled))
    assert (task / AZURE_JSONL_FILE).is_file()

    fingerprint_before = read_table(root.warehouse("coco_datasets", "acme", "branding"))["fingerprint"].iloc[
        0
    ]
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv(DATA_ENV, str(data))
    monkeypatch.setenv(PROFILE_ENV, "smoke")
    assert (
        main(
            ["retrain", "--brand", "acme", "--object", "branding", "--data", str(data), "--profile", "smoke"]
        )
        == 0
    )

    labels = read_table(root.warehouse("labels", "acme"))
    errors = read_table(root.warehouse("labels_errors", "acme"))
    assert not errors["file"].astype(str).str.contains("round1_cvat").any()
    new = labels[labels["source_file"] == "raw/acme/labels/round1_cvat.json"].drop_duplicates("image_path")
    # every queued image came back, frames resolved to their creative and index
    got = {
        (p, c, None if pd.isna(f) else int(f))
        for p, c, f in new[["image_path", "creative_id", "frame_index"]].itertuples(index=False)
    }
    want = {
        (p, c, None if pd.isna(f) else int(f))
        for p, c, f in queue[["image_path", "creative_id", "frame_index"]].itertuples(index=False)
    }
    assert got == want
    boxes = labels[(labels["image_path"] == first["file_name"]) & (labels["category"] == "logo")]
    assert ((boxes["x_min"] == 2) & (boxes["y_max"] == 18)).any()

    datasets = read_table(root.warehouse("coco_datasets", "acme", "branding"))
    assert datasets["fingerprint"].iloc[0] != fingerprint_before
    in_splits = {
        im["file_name"]
        for json_path in datasets["json_path"]
        for im in json.loads((root.root / str(json_path)).read_text())["images"]
    }
    assert set(queue["image_path"]) <= in_splits
    chosen = read_table(root.warehouse("chosen_model", "acme", "branding")).iloc[0]
    assert chosen["status"] == "model" and chosen["dataset_fingerprint"] == datasets["fingerprint"].iloc[0]
    thresholds = read_table(root.warehouse("optimal_thresholds", "acme", "branding"))
    assert set(thresholds["model_id"]) == {chosen["model_id"]}
