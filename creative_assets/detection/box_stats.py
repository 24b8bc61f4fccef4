"""What the labelled boxes look like at the size the detector sees them: the facts anchors and input size follow.

A box's *size* is the square root of its area (COCO's convention: "small" means area < 32²), its *relative
size* that size over the image's short side, its *aspect ratio* height / width (the convention of both
detectron2's ANCHOR_GENERATOR.ASPECT_RATIOS and torchvision's AnchorGenerator). The training input is
detectron2's ResizeShortestEdge: a box's size at the input is its size times the image's resize factor, so
a 40 px logo in a 640 px still is 10 px at a 160 px input — below what an FPN level of stride 8 learns well.

`SIZE_BINS_PX` (16, 32, 64 px at the input) bound the bins used for the counts here and for AP by size in
`evaluation.coco_ap_by_size`: COCO's own 32/96 px bins are meant for ~640 px inputs and would put nearly every
box of a 160 px input into "small".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SIZE_BINS_PX = (16, 32, 64)
# names of the bins [0, 16), [16, 32), [32, 64), [64, ∞) px at the input
SIZE_BIN_NAMES = ("tiny", "small", "medium", "large")
ALL_CLASSES = "__all__"
BOX_STATS_COLUMNS = [
    "class_name", "boxes", "images",
    "rel_size_min", "rel_size_p05", "rel_size_p50", "rel_size_p95", "rel_size_max",
    "aspect_p05", "aspect_p50", "aspect_p95",
    "input_px_p05", "input_px_p50", "input_px_p95",
    *[f"under_{b}px" for b in SIZE_BINS_PX],
]  # fmt: skip


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class LabelBoxes:
    """Every box of a COCO file with the size of the image it sits in; one entry per box."""

    class_names: np.ndarray  # (N,) str
    image_ids: np.ndarray  # (N,) int64
    widths: np.ndarray  # (N,) float64, box width in image pixels
    heights: np.ndarray  # (N,) float64
    image_widths: np.ndarray  # (N,) float64
    image_heights: np.ndarray  # (N,) float64

    def __len__(self) -> int:
        return int(self.widths.shape[0])

    def of_class(self, name: str) -> LabelBoxes:
        """The boxes of one class (`ALL_CLASSES`: all of them)."""
        if name == ALL_CLASSES:
            return self
        keep = self.class_names == name
        return LabelBoxes(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))

    @property
    def sizes(self) -> np.ndarray:
        """sqrt(area) in image pixels."""
        return np.sqrt(self.widths * self.heights)

    @property
    def relative_sizes(self) -> np.ndarray:
        """sqrt(area) over the image's short side."""
        return self.sizes / np.minimum(self.image_widths, self.image_heights)

    @property
    def aspect_ratios(self) -> np.ndarray:
        """height / width."""
        return self.heights / self.widths


def read_label_boxes(json_path: Path, classes: Sequence[str] | None = None) -> LabelBoxes:
    """The non-crowd boxes with a positive area of `classes` (all categories when None) in a COCO file."""
    with open(json_path, encoding="utf-8") as f:
        coco = json.load(f)
    names = {int(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    images = {int(im["id"]): (float(im["width"]), float(im["height"])) for im in coco.get("images", [])}
    rows = []
    for ann in coco.get("annotations", []):
        name = names.get(int(ann["category_id"]))
        image = images.get(int(ann["image_id"]))
        _, _, w, h = (float(v) for v in ann["bbox"])
        if name is None or image is None or ann.get("iscrowd", 0) or w <= 0 or h <= 0:
            continue
        if classes is not None and name not in classes:
            continue
        rows.append((name, int(ann["image_id"]), w, h, *image))
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return LabelBoxes(
        class_names=np.asarray(columns[0], dtype=object),
        image_ids=np.asarray(columns[1], dtype=np.int64),
        widths=np.asarray(columns[2], dtype=np.float64),
        heights=np.asarray(columns[3], dtype=np.float64),
        image_widths=np.asarray(columns[4], dtype=np.float64),
        image_heights=np.asarray(columns[5], dtype=np.float64),
    )


def input_scale(
    image_widths: np.ndarray, image_heights: np.ndarray, short_edge: int, max_size: int
) -> np.ndarray:
    """ResizeShortestEdge's factor per image: short side to `short_edge`, long side capped at `max_size`."""
    short = np.minimum(image_widths, image_heights)
    long = np.maximum(image_widths, image_heights)
    return np.minimum(short_edge / short, max_size / long)


def sizes_at_input(boxes: LabelBoxes, short_edge: int, max_size: int) -> np.ndarray:
    """sqrt(area) of every box in pixels of the resized input."""
    return boxes.sizes * input_scale(boxes.image_widths, boxes.image_heights, short_edge, max_size)


def size_bin(sizes_px: np.ndarray) -> np.ndarray:
    """Index into SIZE_BIN_NAMES of each size (in input pixels)."""
    return np.searchsorted(np.asarray(SIZE_BINS_PX, dtype=np.float64), sizes_px, side="right")


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else float("nan")


def box_statistics(boxes: LabelBoxes, short_edge: int, max_size: int) -> pd.DataFrame:
    """Per class (and `__all__`): box and image counts, relative size and aspect-ratio quantiles, size at the
    input (short side `short_edge`, long side ≤ `max_size`) and how many boxes fall under 16/32/64 px there."""
    names = sorted({str(n) for n in boxes.class_names})
    rows = []
    for name in [*names, ALL_CLASSES] if len(names) != 1 else names:
        b = boxes.of_class(name)
        rel, aspect, px = b.relative_sizes, b.aspect_ratios, sizes_at_input(b, short_edge, max_size)
        row: dict[str, object] = {
            "class_name": name,
            "boxes": len(b),
            "images": int(np.unique(b.image_ids).size),
            "rel_size_min": float(rel.min()) if rel.size else float("nan"),
            "rel_size_max": float(rel.max()) if rel.size else float("nan"),
        }
        for q in (5, 50, 95):
            row[f"rel_size_p{q:02d}"] = _quantile(rel, q / 100)
            row[f"aspect_p{q:02d}"] = _quantile(aspect, q / 100)
            row[f"input_px_p{q:02d}"] = _quantile(px, q / 100)
        for limit in SIZE_BINS_PX:
            row[f"under_{limit}px"] = int(np.sum(px < limit))
        rows.append(row)
    table = pd.DataFrame(rows, columns=BOX_STATS_COLUMNS)
    ints = ["boxes", "images", *[f"under_{b}px" for b in SIZE_BINS_PX]]
    return table.astype({"class_name": "string"} | dict.fromkeys(ints, "int64")).round(4)
