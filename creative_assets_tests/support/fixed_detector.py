"""A detector of our own with known outputs: it reads an image's id from its top-left pixel and returns the
predictions it was given for that id. Lets a test compute the grid's metrics by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from creative_assets.detection.backend import Predictions


class FixedDetector:
    """Returns `by_id[id]` for an image whose pixel (0, 0) has blue value `id` (see `write_id_images`)."""

    backend = "fixed"
    device = "cpu"

    def __init__(self, classes: Sequence[str], by_id: dict[int, Predictions]) -> None:
        self.classes = list(classes)
        self.by_id = by_id

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        out = []
        for image in images:
            p = self.by_id.get(
                int(image[0, 0, 0]),
                Predictions(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)),
            )
            keep = p.scores >= score_floor
            out.append(Predictions(p.boxes[keep], p.scores[keep], p.labels[keep]))
        return out


def write_id_images(folder: Path, ids: Sequence[int], size: int = 64) -> list[tuple[int, str]]:
    """PNG images whose pixel (0, 0) encodes their COCO id; returns (id, file_name) pairs."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in ids:
        image = np.full((size, size, 3), 128, np.uint8)
        image[0, 0] = (i, 0, 0)
        cv2.imwrite(str(folder / f"{i}.png"), image)
        pairs.append((i, f"{folder.name}/{i}.png"))
    return pairs
