"""Training data: a torch Dataset over one COCO split, with detectron2's default training augmentation.

- Images are read with OpenCV (BGR) and handed to the model as RGB floats in [0, 1].
- Augmentation (`augmentation.py`, shared with the detectron2 backend): detectron2's defaults —
  ResizeShortestEdge (short side drawn from INPUT.MIN_SIZE_TRAIN, long side capped at INPUT.MAX_SIZE_TRAIN) and
  a horizontal flip with probability 0.5, boxes following — then `train.augment`'s scale jitter, colour
  jitter, cutout, blur and JPEG re-compression.
- Images without boxes stay in as negatives (targets with boxes of shape (0, 4)).
- Annotations of categories outside `classes` and crowd annotations (`iscrowd: 1`) are not trained on;
  boxes with no area are dropped and counted in `CocoDetectionDataset.stats`.
- Sampling is iteration-based: `InfiniteTrainingSampler` yields (index, augmentation seed) pairs from
  seeded shuffles, so the stream of augmented samples depends only on the seed, never on MAX_ITER,
  the number of loader workers or the machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from creative_assets.detection.augmentation import augment
from creative_assets.detection.backend import CocoSplit
from creative_assets.settings import AugmentSettings

Sample = tuple[torch.Tensor, dict[str, torch.Tensor]]


@dataclass(frozen=True)
class CocoRecord:
    """One image of a split: boxes (x_min, y_min, x_max, y_max) in its pixels, labels index `classes`."""

    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32
    labels: np.ndarray  # (N,) int64


def load_records(split: CocoSplit, classes: Sequence[str]) -> tuple[list[CocoRecord], dict[str, int]]:
    """Every image of `split` with its boxes of `classes`, in image-id order, and counts of what was left out."""
    with open(split.json_path, encoding="utf-8") as f:
        coco = json.load(f)
    class_index = {name: i for i, name in enumerate(classes)}
    category_class = {
        int(c["id"]): class_index[c["name"]] for c in coco.get("categories", []) if c["name"] in class_index
    }
    per_image: dict[int, list[tuple[list[float], int]]] = {}
    stats = {"other_category": 0, "crowd": 0, "empty_box": 0}
    for ann in coco.get("annotations", []):
        label = category_class.get(int(ann["category_id"]))
        if label is None:
            stats["other_category"] += 1
        elif ann.get("iscrowd", 0):
            stats["crowd"] += 1
        else:
            per_image.setdefault(int(ann["image_id"]), []).append((ann["bbox"], label))
    records = []
    for img in sorted(coco.get("images", []), key=lambda im: int(im["id"])):
        image_id, width, height = int(img["id"]), int(img["width"]), int(img["height"])
        boxes, labels = [], []
        for (x, y, w, h), label in per_image.get(image_id, []):
            x0, y0 = max(0.0, float(x)), max(0.0, float(y))
            x1, y1 = min(float(width), float(x) + float(w)), min(float(height), float(y) + float(h))
            if x1 - x0 < 1.0 or y1 - y0 < 1.0:
                stats["empty_box"] += 1
                continue
            boxes.append((x0, y0, x1, y1))
            labels.append(label)
        records.append(
            CocoRecord(
                image_id=image_id,
                path=Path(split.image_root) / img["file_name"],
                width=width,
                height=height,
                boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
                labels=np.asarray(labels, dtype=np.int64),
            )
        )
    return records, stats


def read_bgr(path: Path) -> np.ndarray:
    """Decode an image file to BGR uint8 (H, W, 3); ValueError naming the file if it cannot be read."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise ValueError(f"cannot read image {path}")
    return image


def to_model_input(image_bgr: np.ndarray) -> torch.Tensor:
    """BGR uint8 (H, W, 3) → RGB float tensor (3, H, W) in [0, 1], as torchvision detectors expect."""
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)


class CocoDetectionDataset(Dataset):
    """Augmented training samples of one COCO split; index with (image index, augmentation seed)."""

    def __init__(
        self,
        split: CocoSplit,
        classes: Sequence[str],
        min_sizes: Sequence[int],
        max_size: int,
        flip_prob: float = 0.5,
        augmentations: AugmentSettings | None = None,
    ) -> None:
        self.classes = list(classes)
        self.augmentations = augmentations
        self.records, self.stats = load_records(split, self.classes)
        self.min_sizes = list(min_sizes)
        self.max_size = max_size
        self.flip_prob = flip_prob

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        index, seed = key
        record = self.records[index]
        rng = np.random.default_rng(seed)
        image, boxes = augment(
            read_bgr(record.path),
            record.boxes,
            rng,
            self.min_sizes,
            self.max_size,
            self.augmentations,
            self.flip_prob,
        )
        target = {
            "boxes": torch.from_numpy(boxes).reshape(-1, 4),
            # torchvision reserves label 0 for the background
            "labels": torch.from_numpy(record.labels + 1),
        }
        return to_model_input(image), target


class InfiniteTrainingSampler(Sampler):
    """Endless (index, augmentation seed) pairs: a fresh seeded shuffle of all images per epoch."""

    def __init__(self, size: int, seed: int) -> None:
        if size <= 0:
            raise ValueError("the training split has no images")
        self.size = size
        self.seed = seed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = 0
        while True:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(self.size)
            aug_seeds = rng.integers(0, 2**62, size=self.size)
            for index, aug_seed in zip(order, aug_seeds, strict=True):
                yield int(index), int(aug_seed)
            epoch += 1


def collate_samples(batch: list[Sample]) -> list[Sample]:
    """Keep a batch as a list: images of different sizes are padded by the model, not here."""
    return batch
