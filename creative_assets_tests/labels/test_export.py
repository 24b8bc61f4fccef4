"""The exported labelling task: real image files, COCO read by pycocotools, JSONL and COCO read back by our
importers, and the way back through build_label_set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO

from creative_assets.labels.export import (
    AZURE_JSONL_FILE,
    COCO_FILE,
    export_task,
    image_url,
    validate_task,
)
from creative_assets.labels.importers import load_label_file
from creative_assets.labels.queue import brand_images
from creative_assets.labels.resolve import build_label_set
from creative_assets.layout import DataRoot

BRAND = "acme"
CATEGORIES = ["logo", "product", "face"]
DAY = "2024-05-06"
DATASTORE = "azureml://datastores/workspaceblobstore/paths/ca/exports"


@pytest.fixture
def data(tmp_path: Path):
    """A data root with two stills (one with a space in its name) and two frames of one video, on disk."""
    root = DataRoot(tmp_path / "data")
    stills = {"images/a.jpg": (80, 60), "images/spring sale #1.png": (100, 50)}
    for cid, (w, h) in stills.items():
        target = root.creatives(BRAND) / cid
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), np.full((h, w, 3), 127, np.uint8))
    for index in (0, 10):
        target = root.frame_path(BRAND, "videos/v.mp4", index)
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), np.full((40, 64, 3), 60, np.uint8))
    manifest = pd.DataFrame(
        [
            {"brand": BRAND, "creative_id": cid, "media_type": "image", "path": f"raw/{BRAND}/creatives/{cid}",
             "width": w, "height": h}
            for cid, (w, h) in stills.items()
        ]
        + [{"brand": BRAND, "creative_id": "videos/v.mp4", "media_type": "video",
            "path": f"raw/{BRAND}/creatives/videos/v.mp4", "width": 64, "height": 40}]
    ).astype({"width": "Int64", "height": "Int64"})  # fmt: skip
    frames = pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": "videos/v.mp4",
            "frame_index": [0, 10],
            "timestamp_s": [0.0, 1.0],
            "path": [f"frames/{BRAND}/videos/v.mp4/{i:06d}.jpg" for i in (0, 10)],
            "width": 64,
            "height": 40,
        }
    )
    queue = brand_images(manifest, frames)
    queue.insert(0, "rank", np.arange(1, len(queue) + 1))
    # rows: a.jpg, spring sale #1.png, v#0, v#10
    detections = pd.DataFrame(
        [
            ("images/a.jpg", None, "logo", 0.9, 10, 5, 30, 25, True),
            ("images/a.jpg", None, "product", 0.3, 0, 0, 8, 8, False),  # below threshold: no pre-annotation
            ("videos/v.mp4", 10, "face", 0.8, 60, 30, 70, 50, True),  # clipped to 64 x 40
            ("images/other.jpg", None, "logo", 0.9, 1, 1, 5, 5, True),  # not queued
        ],
        columns=["creative_id", "frame_index", "class_name", "score", "x_min", "y_min", "x_max", "y_max",
                 "above_threshold"],
    ).astype({"frame_index": "Int64"})  # fmt: skip
    return root, manifest, frames, queue, detections


def test_export_copies_each_queued_image_under_its_data_root_path(data):
    root, _, _, queue, detections = data
    task = export_task(root, BRAND, "logo", queue, detections, CATEGORIES, DAY, DATASTORE)
    assert task.folder == root.root / "exports" / BRAND / "logo" / DAY
    for rel in queue["image_path"]:
        assert (task.folder / rel).read_bytes() == (root.root / rel).read_bytes()


def test_pycocotools_reads_the_pre_annotations_in_pixels(data):
    root, _, _, queue, detections = data
    task = export_task(root, BRAND, "logo", queue, detections, CATEGORIES, DAY, DATASTORE)
    coco = COCO(str(task.coco_path))
    assert sorted(coco.getImgIds()) == [1, 2, 3, 4]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == CATEGORIES
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [(a["category_id"], a["bbox"]) for a in first] == [(1, [10.0, 5.0, 20.0, 20.0])]
    frame = coco.loadAnns(coco.getAnnIds(imgIds=[4]))
    assert [(a["category_id"], a["bbox"]) for a in frame] == [(3, [60.0, 30.0, 4.0, 10.0])]
    assert coco.getAnnIds(imgIds=[2, 3]) == []
    assert coco.loadImgs([2])[0]["file_name"] == f"raw/{BRAND}/creatives/images/spring sale #1.png"


def test_azure_jsonl_has_normalised_boxes_and_urls_under_the_datastore_root(data):
    root, _, _, queue, detections = data
    task = export_task(root, BRAND, "logo", queue, detections, CATEGORIES, DAY, DATASTORE)
    lines = [json.loads(line) for line in task.jsonl_path.read_text().splitlines()]
    assert lines[0]["image_url"] == f"{DATASTORE}/{BRAND}/logo/{DAY}/raw/{BRAND}/creatives/images/a.jpg"
    (box,) = lines[0]["label"]
    assert (box["label"], box["isCrowd"]) == ("logo", 0)
    # (10, 5)-(30, 25) in an 80 x 60 image, to 6 decimals
    expected = (10 / 80, 5 / 60, 30 / 80, 25 / 60)
    assert [box[k] for k in ("topX", "topY", "bottomX", "bottomY")] == pytest.approx(expected, abs=5e-7)
    assert lines[1]["image_url"].endswith("/images/spring%20sale%20%231.png")
    assert lines[3]["image_details"] == {"format": "jpg", "width": "64px", "height": "40px"}


def test_image_url_encodes_the_path_but_not_the_root():
    assert (
        image_url("AmlDatastore://store/x/", "b/o/d", "raw/b/a b?.jpg")
        == "AmlDatastore://store/x/b/o/d/raw/b/a%20b%3F.jpg"
    )


def test_both_files_pass_our_importers_and_resolve_to_the_queued_images(data):
    root, manifest, frames, queue, detections = data
    task = export_task(root, BRAND, "logo", queue, detections, CATEGORIES, DAY, DATASTORE)
    assert validate_task(root, BRAND, task, queue, manifest, frames) == []
    for path in (task.coco_path, task.jsonl_path):
        parsed = load_label_file(path)
        assert parsed.errors == []
        assert sum(len(im.boxes) for im in parsed.images) == 2


def test_labelled_task_dropped_into_labels_resolves_frames_to_creative_and_index(data):
    root, manifest, frames, queue, detections = data
    task = export_task(root, BRAND, "logo", queue, detections, CATEGORIES, DAY, DATASTORE)
    root.labels(BRAND).mkdir(parents=True)
    shutil.copy(task.jsonl_path, root.labels(BRAND) / "round1.jsonl")
    labels = build_label_set(root, BRAND, manifest, frames, CATEGORIES)
    assert labels.errors.empty
    got = sorted(zip(labels.images["creative_id"], labels.images["frame_index"].astype(object), strict=True),
                 key=str)  # fmt: skip
    assert got == sorted(
        [
            ("images/a.jpg", pd.NA),
            ("images/spring sale #1.png", pd.NA),
            ("videos/v.mp4", 0),
            ("videos/v.mp4", 10),
        ],
        key=str,
    )
    face = labels.annotations[labels.annotations["category"] == "face"].iloc[0]
    assert face["image_path"] == f"frames/{BRAND}/videos/v.mp4/000010.jpg"
    assert (face["x_min"], face["y_min"], face["x_max"], face["y_max"]) == pytest.approx((60, 30, 64, 40))


def test_a_second_export_of_the_same_day_replaces_the_first(data):
    root, _, _, queue, detections = data
    export_task(root, BRAND, "logo", queue, detections, CATEGORIES, DAY, DATASTORE)
    task = export_task(root, BRAND, "logo", queue.iloc[:1], detections, CATEGORIES, DAY, DATASTORE)
    files = sorted(p.relative_to(task.folder).as_posix() for p in task.folder.rglob("*") if p.is_file())
    assert files == sorted([COCO_FILE, AZURE_JSONL_FILE, "README.txt", f"raw/{BRAND}/creatives/images/a.jpg"])
