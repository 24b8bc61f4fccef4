"""Tiled inference: a detector that also looks at overlapping full-resolution tiles of a large image.

A detector resizes every input so its short side is its test size (160 px in the demo profile), so a 40 px
logo in a 640 px still shrinks to 10 px, below what its anchors learned. Tiles of about the test size are
seen at (close to) full resolution instead. `TiledDetector` wraps any `Detector`: per image it cuts tiles of
`tile_size` pixels that overlap by `overlap`, the last row and column flush with the image's edges; images
no larger than one tile are not cut. Every tile of every image in a call, plus the whole images when
`whole_image` is set, goes to the wrapped detector in ONE `predict` call, so tiling is batched like the rest.
Tile boxes are shifted back to image pixels and merged by non-maximum suppression within each class (the
highest score stays). Overlap is measured as the intersection over the SMALLER box, not IoU: a fragment of a
large object, cut by a tile border, lies inside the object's whole box and is suppressed by it, where its IoU
would be small. An object smaller than the tiles' overlap is whole in at least one tile.

The wrapped detector's backend and classes are kept, so detections land in the same table;
`inference` (the tiling settings) enters the model fingerprint, so turning tiling on or changing it
recomputes the brand's detections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from creative_assets.detection.backend import Detector, Predictions
from creative_assets.settings import TilingSettings

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def tile_windows(height: int, width: int, tile_size: int, overlap: float) -> list[Window]:
    """Overlapping `tile_size` windows covering an image, flush with its right and bottom edges; none for an
    image that fits in one tile."""
    if height <= tile_size and width <= tile_size:
        return []
    step = max(1, int(round(tile_size * (1.0 - overlap))))
    return [
        (x, y, min(x + tile_size, width), min(y + tile_size, height))
        for y in _starts(height, tile_size, step)
        for x in _starts(width, tile_size, step)
    ]


def class_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, overlap: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression within each class, in descending score order (ties: the
    larger box first, so a fragment never beats the whole object it lies in); a box is suppressed when its
    intersection with a kept one exceeds `overlap` of the smaller of the two."""
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    order = np.lexsort((-area, -scores))
    keep: list[int] = []
    suppressed = np.zeros(len(scores), dtype=bool)
    for position, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[position + 1 :]
        rest = rest[(labels[rest] == labels[i]) & ~suppressed[rest]]
        if rest.size == 0:
            continue
        w = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = w * h
        smaller = np.minimum(area[i], area[rest])
        shares = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
        suppressed[rest[shares > overlap]] = True
    return np.asarray(keep, dtype=np.int64)


def inference_of(tiling: TilingSettings | None) -> dict[str, Any]:
    """The model-fingerprint entry of a tiling setting: empty when tiles are not used."""
    return {"tiling": tiling.model_dump(mode="json")} if tiling is not None else {}


class TiledDetector:
    """A `Detector` that runs the wrapped one on the whole image and on its tiles, then merges the boxes."""

    def __init__(self, inner: Detector, tiling: TilingSettings) -> None:
        self.inner = inner
        self.tiling = tiling
        self.classes = list(inner.classes)
        self.backend = inner.backend
        self.device = inner.device
        self.parameter_count = int(getattr(inner, "parameter_count", 0))

    @property
    def inference(self) -> dict[str, Any]:
        """What this wrapper changes about the detections, for the model fingerprint."""
        return inference_of(self.tiling)

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        crops: list[np.ndarray] = []
        origins: list[tuple[int, int, int]] = []  # (image index, x0, y0) of each crop
        for index, image in enumerate(images):
            height, width = image.shape[:2]
            windows = tile_windows(height, width, self.tiling.tile_size, self.tiling.overlap)
            if self.tiling.whole_image or not windows:
                crops.append(image)
                origins.append((index, 0, 0))
            for x0, y0, x1, y1 in windows:
                crops.append(np.ascontiguousarray(image[y0:y1, x0:x1]))
                origins.append((index, x0, y0))
        predictions = self.inner.predict(crops, score_floor=score_floor)
        if len(predictions) != len(crops):
            raise RuntimeError(
                f"the wrapped detector returned {len(predictions)} results for {len(crops)} crops"
            )
        parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in images]
        for (index, x0, y0), pred in zip(origins, predictions, strict=True):
            shift = np.array([x0, y0, x0, y0], dtype=np.float32)
            parts[index].append(
                (np.asarray(pred.boxes, np.float32).reshape(-1, 4) + shift, pred.scores, pred.labels)
            )
        return [self._merge(p) for p in parts]

    def _merge(self, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Predictions:
        boxes = np.concatenate([b for b, _, _ in parts]).astype(np.float32)
        scores = np.concatenate([np.asarray(s, np.float32) for _, s, _ in parts])
        labels = np.concatenate([np.asarray(c, np.int64) for _, _, c in parts])
        keep = class_nms(boxes, scores, labels, self.tiling.merge_overlap)
        return Predictions(boxes=boxes[keep], scores=scores[keep], labels=labels[keep])
