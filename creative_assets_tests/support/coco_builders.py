"""Small COCO splits and predictions written for tests (generated, seeded; never the code under test)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from creative_assets.detection.backend import CocoSplit, Predictions

RED = (0, 0, 255)  # BGR
BLUE = (255, 0, 0)


def write_toy_coco(folder: Path, n_images: int = 8, size: tuple[int, int] = (96, 128)) -> CocoSplit:
    """A small COCO split: red squares are `logo`, blue discs `product`; every third image is empty."""
    height, width = size
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(n_images):
        img = np.full((height, width, 3), 200, np.uint8)
        img += rng.integers(0, 30, img.shape, dtype=np.uint8)
        name = f"img_{i:02d}.png"
        if i % 3 != 2:
            s = int(rng.integers(20, 36))
            x, y = int(rng.integers(0, width - s)), int(rng.integers(0, height - s))
            cv2.rectangle(img, (x, y), (x + s - 1, y + s - 1), RED, -1)
            annotations.append({"image_id": i + 1, "category_id": 1, "bbox": [x, y, s, s]})
            if i % 2 == 0:
                r = 10
                cx, cy = (x + s + r + 2) % (width - r), (y + r + 2) % (height - r)
                cx, cy = max(cx, r), max(cy, r)
                cv2.circle(img, (cx, cy), r, BLUE, -1)
                annotations.append(
                    {"image_id": i + 1, "category_id": 2, "bbox": [cx - r, cy - r, 2 * r, 2 * r]}
                )
        cv2.imwrite(str(images_dir / name), img)
        images.append({"id": i + 1, "file_name": f"images/{name}", "width": width, "height": height})
    for k, ann in enumerate(annotations, start=1):
        ann.update(id=k, iscrowd=0, area=float(ann["bbox"][2] * ann["bbox"][3]))
    coco = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "logo"}, {"id": 2, "name": "product"}],
    }
    json_path = folder / "split.json"
    json_path.write_text(json.dumps(coco), encoding="utf-8")
    return CocoSplit(json_path=json_path, image_root=folder)


def write_coco(
    path: Path,
    images: list[tuple[int, str]],
    boxes: list[tuple[int, int, list[float]]],
    categories: list[tuple[int, str]],
    size: tuple[int, int] = (200, 200),
) -> Path:
    """A COCO json like a labelling export: (id, file_name) images, (image_id, category_id, xywh) boxes."""
    dataset = {
        "images": [{"id": i, "file_name": f, "width": size[0], "height": size[1]} for i, f in images],
        "annotations": [
            {"id": n + 1, "image_id": i, "category_id": c, "bbox": b} for n, (i, c, b) in enumerate(boxes)
        ],
        "categories": [{"id": c, "name": name} for c, name in categories],
    }
    path.write_text(json.dumps(dataset))
    return path


def preds(*detections: tuple[list[float], float, int]) -> Predictions:
    """Predictions from (xyxy box, score, label) triples."""
    return Predictions(
        boxes=np.array([d[0] for d in detections], dtype=np.float32).reshape(-1, 4),
        scores=np.array([d[1] for d in detections], dtype=np.float32),
        labels=np.array([d[2] for d in detections], dtype=np.int64),
    )
