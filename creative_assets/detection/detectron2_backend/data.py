"""COCO splits in detectron2's dataset catalog, registered idempotently under a name derived from the split."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from detectron2.data import DatasetCatalog
from detectron2.data.datasets import register_coco_instances

from creative_assets.detection.backend import CocoSplit

DATASET_PREFIX = "creative_assets_"


def dataset_name(split: CocoSplit, categories: Sequence[tuple[int, str]]) -> str:
    """The catalog name of a split: the same file, image root and categories always give the same name."""
    key = json.dumps(
        [
            str(Path(split.json_path).resolve()),
            str(Path(split.image_root).resolve()),
            [[int(i), str(n)] for i, n in categories],
        ]
    )
    return DATASET_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]


def register_coco_split(split: CocoSplit, classes: Sequence[str]) -> str:
    """Register `split` with detectron2's catalogs (idempotent) and return its dataset name.

    The json's categories, in id order, must be `classes`: detectron2 takes its class list from them.
    """
    json_path = Path(split.json_path).resolve()
    with open(json_path, encoding="utf-8") as f:
        categories = sorted(json.load(f).get("categories", []), key=lambda c: int(c["id"]))
    names = [str(c["name"]) for c in categories]
    if names != list(classes):
        raise ValueError(
            f"{json_path}: categories {names} (in id order) are not the classes to train, {list(classes)}"
        )
    ids = [int(c["id"]) for c in categories]
    name = dataset_name(split, list(zip(ids, names, strict=True)))
    if name not in DatasetCatalog.list():
        metadata = {
            "thing_classes": list(classes),
            "thing_dataset_id_to_contiguous_id": {cat_id: i for i, cat_id in enumerate(ids)},
        }
        register_coco_instances(name, metadata, str(json_path), str(Path(split.image_root).resolve()))
    return name
