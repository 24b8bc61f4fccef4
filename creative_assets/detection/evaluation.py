"""The one evaluation definition used everywhere (DESIGN, "Evaluation").

Presence (the case study's "accuracy"): for every image and class, the class is *present in truth* when the
image has at least one ground-truth box of it, and *predicted present at threshold t* when the image has at
least one detection of it with score >= t. Counting over the images of a split gives TP, FP, TN, FN and

    accuracy  = (TP + TN) / N                (NaN when N == 0: no images, no accuracy)
    precision = TP / (TP + FP)               (0.0 when nothing is predicted present: 0/0 := 0)
    recall    = TP / (TP + FN)               (0.0 when the class is never present: 0/0 := 0)
    F1        = 2 P R / (P + R)              (0.0 when P + R == 0)

The zero-division rule is the usual one for retrieval metrics (scikit-learn's `zero_division=0`): a model is
not credited with precision it never exercised. Thresholds must be > 0 because an image without any detection
has a max score of 0.0 and must never count as "predicted present".

Box metrics come from pycocotools' `COCOeval` only: COCO AP (IoU .50:.95, area all, 100 detections) and AP50.
pycocotools reports -1 for a class without ground truth; that becomes NaN here. By box size
(`coco_ap_by_size`), the same COCOeval runs with its area ranges set to the bins of `box_stats.SIZE_BINS_PX`
in pixels of the model's input, pooled over classes.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from creative_assets.detection.backend import Predictions
from creative_assets.detection.box_stats import SIZE_BIN_NAMES, SIZE_BINS_PX, input_scale, size_bin

ALL_CLASSES = "__all__"
"""Class name of the pooled rows in `evaluate_presence` (micro-average over every (image, class) cell)."""

PRESENCE_COLUMNS = [
    "class_name",
    "confidence",
    "n",
    "tp",
    "fp",
    "tn",
    "fn",
    "accuracy",
    "precision",
    "recall",
    "f1",
]
COUNT_COLUMNS = ["n", "tp", "fp", "tn", "fn"]
RATE_COLUMNS = ["accuracy", "precision", "recall", "f1"]


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class GroundTruth:
    """One COCO split, reduced to what evaluation needs; rows follow `image_ids` (ascending)."""

    json_path: Path
    image_ids: np.ndarray  # (n_images,) int64, ascending
    file_names: list[str]  # relative to the split's image root
    widths: np.ndarray  # (n_images,) int64
    heights: np.ndarray  # (n_images,) int64
    classes: list[str]  # category names in category-id order; a Predictions label indexes this list
    category_ids: list[int]  # COCO category id of each class, ascending
    presence: np.ndarray  # (n_images, n_classes) bool: >= 1 ground-truth box of the class
    coco: Any = field(default=None, repr=False, compare=False)  # the loaded pycocotools COCO object

    @property
    def n_images(self) -> int:
        """Number of images in the split."""
        return int(self.image_ids.shape[0])

    def class_index(self, class_name: str) -> int:
        """Column of `class_name` in `presence` (and its Predictions label); ValueError if unknown."""
        try:
            return self.classes.index(class_name)
        except ValueError:
            raise ValueError(
                f"class {class_name!r} is not in {self.json_path.name}: {self.classes}"
            ) from None


def _quiet_coco(dataset: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_ground_truth(json_path: Path) -> GroundTruth:
    """Load a COCO json with pycocotools.

    Annotations without `area` or `iscrowd` get w*h and 0: COCOeval needs both, exports often omit them.
    Every box of a class makes it present, crowd boxes included: a crowd of logos is still a logo.
    """
    json_path = Path(json_path)
    with open(json_path, encoding="utf-8") as f:
        dataset = json.load(f)
    dataset.setdefault("images", [])
    dataset.setdefault("annotations", [])
    dataset.setdefault("categories", [])
    for ann in dataset["annotations"]:
        if "area" not in ann:
            _, _, w, h = ann["bbox"]
            ann["area"] = float(w) * float(h)
        ann.setdefault("iscrowd", 0)
    coco = _quiet_coco(dataset)

    image_ids = np.array(sorted(coco.getImgIds()), dtype=np.int64)
    category_ids = sorted(int(c) for c in coco.getCatIds())
    classes = [str(coco.cats[c]["name"]) for c in category_ids]
    images = [coco.imgs[int(i)] for i in image_ids]
    row = {int(i): r for r, i in enumerate(image_ids)}
    col = {c: k for k, c in enumerate(category_ids)}
    presence = np.zeros((len(image_ids), len(category_ids)), dtype=bool)
    for ann in dataset["annotations"]:
        r, k = row.get(int(ann["image_id"])), col.get(int(ann["category_id"]))
        if r is not None and k is not None:
            presence[r, k] = True
    return GroundTruth(
        json_path=json_path,
        image_ids=image_ids,
        file_names=[str(img["file_name"]) for img in images],
        widths=np.array([int(img.get("width", 0)) for img in images], dtype=np.int64),
        heights=np.array([int(img.get("height", 0)) for img in images], dtype=np.int64),
        classes=classes,
        category_ids=category_ids,
        presence=presence,
        coco=coco,
    )


def _check_predictions(gt: GroundTruth, preds: Mapping[int, Predictions]) -> None:
    known = set(int(i) for i in gt.image_ids)
    unknown = sorted(int(i) for i in preds if int(i) not in known)
    if unknown:
        raise ValueError(f"predictions for image ids not in {gt.json_path.name}: {unknown[:10]}")
    n_classes = len(gt.classes)
    for image_id, p in preds.items():
        labels = np.asarray(p.labels)
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"image {image_id}: label outside 0..{n_classes - 1} ({gt.classes})")


def max_scores(gt: GroundTruth, preds: Mapping[int, Predictions]) -> np.ndarray:
    """Highest detection score per (image, class), shape (n_images, n_classes); 0.0 where none was detected.

    An image missing from `preds` had no detections.
    """
    _check_predictions(gt, preds)
    out = np.zeros((gt.n_images, len(gt.classes)), dtype=np.float64)
    for r, image_id in enumerate(gt.image_ids):
        p = preds.get(int(image_id))
        if p is None or len(p) == 0:
            continue
        np.maximum.at(out[r], np.asarray(p.labels, dtype=np.int64), np.asarray(p.scores, dtype=np.float64))
    return out


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def presence_arrays(
    truth: np.ndarray, scores: np.ndarray, thresholds: Sequence[float]
) -> dict[str, np.ndarray]:
    """Counts and rates at every threshold at once: arrays of len(thresholds), keyed like PRESENCE_COLUMNS.

    This is the single implementation behind `presence_metrics` and the threshold sweep.
    """
    truth = np.asarray(truth, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if truth.shape != scores.shape:
        raise ValueError(f"truth has {truth.size} cells but scores has {scores.size}")
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    if thr.size and not np.all(thr > 0):
        raise ValueError("thresholds must be > 0 (an image without detections has max score 0.0)")
    predicted = scores[None, :] >= thr[:, None]  # NaN scores compare False: no detection
    positives = int(truth.sum())
    n = truth.size
    tp = (predicted & truth[None, :]).sum(axis=1).astype(np.int64)
    fp = predicted.sum(axis=1).astype(np.int64) - tp
    fn = positives - tp
    tn = (n - positives) - fp
    precision = _ratio(tp, tp + fp, 0.0)
    recall = _ratio(tp, tp + fn, 0.0)
    return {
        "n": np.full(thr.shape, n, dtype=np.int64),
        "tp": tp,
        "fp": fp,
        "tn": tn.astype(np.int64),
        "fn": fn.astype(np.int64),
        "accuracy": _ratio(tp + tn, np.full(thr.shape, n), np.nan),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall, 0.0),
    }


@dataclass(frozen=True)
class PresenceMetrics:
    """Presence counts and rates at one threshold (see the module docstring for the definitions)."""

    tp: int
    fp: int
    tn: int
    fn: int
    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict of every field (JSON- and Dagster-metadata-friendly)."""
        return asdict(self)

    def confusion(self) -> np.ndarray:
        """2×2 counts [[TN, FP], [FN, TP]]: rows truth absent/present, columns predicted absent/present."""
        return np.array([[self.tn, self.fp], [self.fn, self.tp]], dtype=np.int64)


def presence_metrics(truth: np.ndarray, scores: np.ndarray, threshold: float) -> PresenceMetrics:
    """Presence metrics of max `scores` against boolean `truth` (same shape, any) at `threshold` (> 0)."""
    a = presence_arrays(truth, scores, [threshold])
    return PresenceMetrics(
        **{k: int(a[k][0]) for k in COUNT_COLUMNS},
        **{k: float(a[k][0]) for k in RATE_COLUMNS},
    )


def always_absent_accuracy(truth: np.ndarray) -> float:
    """Accuracy of the trivial model that never predicts the class: the share of cells where it is absent."""
    truth = np.asarray(truth, dtype=bool)
    return float(np.mean(~truth)) if truth.size else float("nan")


def evaluate_presence(
    gt: GroundTruth, preds: Mapping[int, Predictions], confidences: Sequence[float]
) -> pd.DataFrame:
    """Presence metrics per (class, confidence), plus `__all__` rows pooled over classes (micro-average).

    The pooled rows count every (image, class) cell once, so N = n_images × n_classes and frequent classes
    weigh more — the accuracy of "every object right on every image, cell by cell".
    """
    scores = max_scores(gt, preds)
    parts = []
    targets = [(name, gt.presence[:, k], scores[:, k]) for k, name in enumerate(gt.classes)]
    targets.append((ALL_CLASSES, gt.presence, scores))
    for name, truth, s in targets:
        a = presence_arrays(truth, s, confidences)
        part = pd.DataFrame(a)
        part.insert(0, "confidence", np.asarray(confidences, dtype=np.float64))
        part.insert(0, "class_name", name)
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)[PRESENCE_COLUMNS]
    df["class_name"] = df["class_name"].astype(pd.StringDtype())
    return df.astype(
        {c: "int64" for c in COUNT_COLUMNS} | {c: "float64" for c in ["confidence", *RATE_COLUMNS]}
    )


def _coco_results(gt: GroundTruth, preds: Mapping[int, Predictions]) -> list[dict[str, Any]]:
    results = []
    for image_id, p in preds.items():
        boxes = np.asarray(p.boxes, dtype=np.float64).reshape(-1, 4)
        for (x0, y0, x1, y1), score, label in zip(
            boxes, np.asarray(p.scores), np.asarray(p.labels), strict=True
        ):
            results.append(
                {
                    "image_id": int(image_id),
                    "category_id": gt.category_ids[int(label)],
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "score": float(score),
                }
            )
    return results


def _mean_valid(precision: np.ndarray) -> float:
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else float("nan")


def coco_ap(gt: GroundTruth, preds: Mapping[int, Predictions]) -> dict[str, float]:
    """COCO box AP (IoU .50:.95) and AP50 from pycocotools, overall and per class (`AP/<c>`, `AP50/<c>`).

    No detections at all gives 0.0 wherever there is ground truth; NaN where there is none (pycocotools' -1).
    """
    _check_predictions(gt, preds)
    coco_gt = gt.coco if gt.coco is not None else load_ground_truth(gt.json_path).coco
    has_gt = gt.presence.any(axis=0)
    results = _coco_results(gt, preds)
    if not results:
        # COCO.loadRes cannot take an empty list; with nothing detected every precision is 0.
        zero = 0.0 if has_gt.any() else float("nan")
        out = {"AP": zero, "AP50": zero}
        for k, name in enumerate(gt.classes):
            out[f"AP/{name}"] = 0.0 if has_gt[k] else float("nan")
            out[f"AP50/{name}"] = 0.0 if has_gt[k] else float("nan")
        return out

    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = [int(i) for i in gt.image_ids]
        ev.params.catIds = list(gt.category_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # precision: [iou thresholds T, recall points R, classes K, area ranges A, max dets M]; area "all" is
    # index 0 and 100 detections the last — the same slice summarize() uses for stats[0] and stats[1].
    precision = ev.eval["precision"]
    iou50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    out = {
        "AP": float(ev.stats[0]) if ev.stats[0] > -1 else float("nan"),
        "AP50": float(ev.stats[1]) if ev.stats[1] > -1 else float("nan"),
    }
    for k, name in enumerate(gt.classes):
        out[f"AP/{name}"] = _mean_valid(precision[:, :, k, 0, -1])
        out[f"AP50/{name}"] = _mean_valid(precision[iou50, :, k, 0, -1])
    return out


def _scaled_coco(gt: GroundTruth, scales: dict[int, float]) -> COCO:
    """A copy of the ground truth whose areas are measured in pixels of the resized input."""
    coco_gt = gt.coco if gt.coco is not None else load_ground_truth(gt.json_path).coco
    dataset = {
        **coco_gt.dataset,
        "annotations": [
            {**ann, "area": float(ann["bbox"][2]) * float(ann["bbox"][3]) * scales[int(ann["image_id"])] ** 2}
            for ann in coco_gt.dataset["annotations"]
        ],
    }
    return _quiet_coco(dataset)


def coco_ap_by_size(
    gt: GroundTruth,
    preds: Mapping[int, Predictions],
    short_edge: int,
    max_size: int,
    bins_px: Sequence[int] = SIZE_BINS_PX,
    bin_names: Sequence[str] = SIZE_BIN_NAMES,
) -> pd.DataFrame:
    """COCO AP, AP50 and recall at IoU 0.5 by box size, one row per size bin, from pycocotools' COCOeval.

    Sizes are sqrt(area) in pixels of the model's input (short side `short_edge`, long side ≤ `max_size`),
    binned at `bins_px`: COCOeval's own area ranges are given in those pixels and every area (truth and
    detections) is rescaled per image, so a bin means the same thing whatever the size of the source image.
    `recall50` is the share of the bin's boxes matched at IoU 0.5 by any detection passed in — pass the
    detections above a threshold to get the recall at that threshold. A bin without truth gives NaN.
    """
    _check_predictions(gt, preds)
    edges = [0.0, *(float(b) ** 2 for b in bins_px), 1e10]
    ranges = [[edges[i], edges[i + 1]] for i in range(len(edges) - 1)]
    scales = dict(
        zip(
            (int(i) for i in gt.image_ids),
            input_scale(gt.widths.astype(float), gt.heights.astype(float), short_edge, max_size),
            strict=True,
        )
    )
    coco_gt = _scaled_coco(gt, scales)
    sizes = {
        int(a["id"]): np.sqrt(a["area"]) for a in coco_gt.dataset["annotations"] if not a.get("iscrowd", 0)
    }
    counts = np.bincount(size_bin(np.array(list(sizes.values()))), minlength=len(ranges))
    rows = [
        {"size": name, "lower_px": float(lo), "boxes": int(counts[i])}
        for i, (name, lo) in enumerate(zip(bin_names, [0, *bins_px], strict=True))
    ]
    results = _coco_results(gt, preds)
    if not results:
        for row in rows:
            value = 0.0 if row["boxes"] else float("nan")
            row.update({"AP": value, "AP50": value, "recall50": value})
        return pd.DataFrame(rows)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        for ann in coco_dt.dataset["annotations"]:
            ann["area"] = float(ann["area"]) * scales[int(ann["image_id"])] ** 2
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.params.imgIds = [int(i) for i in gt.image_ids]
        ev.params.catIds = list(gt.category_ids)
        ev.params.areaRng = ranges
        ev.params.areaRngLbl = list(bin_names)
        ev.evaluate()
        ev.accumulate()
    precision, recall = ev.eval["precision"], ev.eval["recall"]  # [T,R,K,A,M], [T,K,A,M]
    iou50 = int(np.argmin(np.abs(ev.params.iouThrs - 0.5)))
    for a, row in enumerate(rows):
        row["AP"] = _mean_valid(precision[:, :, :, a, -1])
        row["AP50"] = _mean_valid(precision[iou50, :, :, a, -1])
        row["recall50"] = _mean_valid(recall[iou50, :, a, -1])
    return pd.DataFrame(rows)


def by_size_summary(table: pd.DataFrame) -> dict[str, float]:
    """`coco_ap_by_size` rows as flat columns: AP_<size>, AP50_<size>, recall50_<size>, boxes_<size>."""
    out: dict[str, float] = {}
    for row in table.itertuples(index=False):
        for metric in ("AP", "AP50", "recall50"):
            out[f"{metric}_{row.size}"] = float(getattr(row, metric))
        out[f"boxes_{row.size}"] = float(row.boxes)
    return out


def by_size_at_thresholds(
    gt: GroundTruth,
    preds: Mapping[int, Predictions],
    thresholds: Mapping[str, float],
    short_edge: int,
    max_size: int,
) -> pd.DataFrame:
    """`coco_ap_by_size` over all of `preds`, plus `recall50_at_threshold`: the recall at IoU 0.5 of only the
    detections at or above their class's threshold (a class without one keeps none) — what the detections
    table will find, size by size."""
    cut = np.array([thresholds.get(name, np.inf) for name in gt.classes], dtype=np.float64)
    kept = {}
    for image_id, p in preds.items():
        keep = np.asarray(p.scores, dtype=np.float64) >= cut[np.asarray(p.labels, dtype=np.int64)]
        kept[image_id] = Predictions(p.boxes[keep], p.scores[keep], p.labels[keep])
    table = coco_ap_by_size(gt, preds, short_edge, max_size)
    at_threshold = coco_ap_by_size(gt, kept, short_edge, max_size)
    return table[["size", "lower_px", "boxes", "AP", "AP50"]].assign(
        recall50_at_threshold=at_threshold["recall50"].to_numpy()
    )
