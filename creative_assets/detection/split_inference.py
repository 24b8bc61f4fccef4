"""Predict on every image of a COCO split, in batched forward passes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from creative_assets.detection.backend import CocoSplit, Detector, Predictions


def predict_split(
    detector: Detector, split: CocoSplit, images_per_forward: int = 8, score_floor: float = 0.0
) -> dict[int, Predictions]:
    """Predictions for every image of `split`, keyed by COCO image id.

    The next batch is decoded on a thread while the current one runs. An image that cannot be read raises
    ValueError naming the file: splits come validated from the labels stage, so this is a broken data root.
    """
    # coco_data pulls in torch and OpenCV; only a split being predicted needs them.
    from creative_assets.detection.coco_data import read_bgr

    if images_per_forward <= 0:
        raise ValueError("images_per_forward must be positive")
    with open(split.json_path, encoding="utf-8") as f:
        images = sorted(json.load(f).get("images", []), key=lambda im: int(im["id"]))
    batches = [images[i : i + images_per_forward] for i in range(0, len(images), images_per_forward)]

    def decode(batch: list[dict]) -> list:
        return [read_bgr(Path(split.image_root) / im["file_name"]) for im in batch]

    out: dict[int, Predictions] = {}
    if not batches:
        return out
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(decode, batches[0])
        for i, batch in enumerate(batches):
            decoded = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(decode, batches[i + 1])
            for im, pred in zip(batch, detector.predict(decoded, score_floor), strict=True):
                out[int(im["id"])] = pred
    return out
