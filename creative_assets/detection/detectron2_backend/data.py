"""COCO splits in detectron2's dataset catalog (registered idempotently under a name derived from the split), and
the training mapper that applies this project's augmentation (`augmentation.py`, the torchvision backend's too)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from detectron2.data import DatasetCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.structures import Boxes, BoxMode, Instances

from creative_assets.detection.augmentation import augment
from creative_assets.detection.backend import CocoSplit
from creative_assets.detection.coco_data import read_bgr
from creative_assets.settings import TrainSettings

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


class AugmentingMapper:
    """A dataset dict → detectron2 training input (BGR image tensor + Instances) through `augmentation.augment`.

    Its random draws come from a generator seeded from numpy's global RNG, which detectron2 seeds (SEED, and per
    loader worker), so a run stays reproducible for a seed.
    """

    def __init__(self, settings: TrainSettings) -> None:
        self.settings = settings

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        annotations = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
        boxes = np.array(
            [BoxMode.convert(a["bbox"], a["bbox_mode"], BoxMode.XYXY_ABS) for a in annotations],
            dtype=np.float32,
        ).reshape(-1, 4)
        image, boxes = augment(
            read_bgr(record["file_name"]),
            boxes,
            rng,
            self.settings.min_size_train,
            self.settings.max_size_train,
            self.settings.augment,
        )
        instances = Instances(image.shape[:2])
        instances.gt_boxes = Boxes(torch.from_numpy(boxes))
        instances.gt_classes = torch.tensor([int(a["category_id"]) for a in annotations], dtype=torch.int64)
        return {
            "file_name": record["file_name"],
            "image_id": record["image_id"],
            "height": image.shape[0],
            "width": image.shape[1],
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "instances": instances,
        }
