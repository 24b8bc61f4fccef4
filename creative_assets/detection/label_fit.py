"""Fit the detector to the labelled boxes: the input size and the anchors, chosen from the train split.

Why: the profiles' input sizes and the architectures' anchors are fixed for "typical" objects. A logo at 5 % of
a still's short side is 8 px at the demo's 160 px input — smaller than every default anchor of the small CPU
model (16 px and up) and barely a cell of its finest FPN level (stride 8) — and the detector never learns it.

- Input size (`fit_input_size`): when the boxes at `fit.box_quantile` (default the 5 % smallest) are under
  `fit.min_box_pixels` at the smallest training input, every training and test size is scaled up by the same
  factor, capped so the test input's short side stays within `fit.max_short_side` (the profile's time
  budget). Inputs only grow: large objects keep the profile's cost.
- Anchors change only where the architecture's own fail the labels: when fewer than `fit.anchor_match_share`
  (98 %) of the boxes have an anchor that, centred on them, overlaps them with IoU ≥ 0.5 (the check of
  autoanchor-style tools). Measured on `benchmarks/bench_small_objects.py`: re-fitting anchors that already
  matched every box moved presence accuracy within the noise but lowered COCO AP on the clean level
  (0.62 → 0.48 over 3 seeds), so anchors that work are left alone.
- Aspect ratios (`fit_aspect_ratios`): the 10th, 50th and 90th percentiles of height / width, widened to a
  spread of at least 1.5 between the extremes so near-square labels still get three distinct shapes.
- Anchor sizes (`fit_anchor_sizes`): the architecture's own layout (sizes per FPN level, `DEFAULT_ANCHORS`)
  scaled by the one factor (a power of 2^(1/8) between 1/8 and 8) that maximises the mean IoU between each
  box and its best-matching centred anchor — the "best possible match" test of autoanchor-style checks.
  Scaling keeps the number of anchors per location, so the RPN head's weights keep their shapes, and keeps
  the small-to-large order across levels, so small anchors stay on the fine levels.

The chosen values land in `TrainSettings` (anchor_sizes, aspect_ratios, min/max sizes), which every checkpoint
carries: a model is always rebuilt with the anchors and input size it was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from creative_assets.detection.box_stats import LabelBoxes, read_label_boxes, sizes_at_input
from creative_assets.settings import FitSettings, TrainSettings

# Anchor sizes per FPN level (px at the input) of each architecture, and the aspect ratios (height / width)
# they are built with: torchvision's and detectron2's defaults, and our small CPU models'.
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)
DEFAULT_ANCHORS: dict[str, tuple[tuple[int, ...], ...]] = {
    "tiny": ((16, 24), (32, 48), (64, 96)),
    "mobilenet_v3_large": ((32, 64, 128, 256, 512),) * 3,
    "resnet18": ((16,), (32,), (64,), (128,), (256,)),
    "resnet50": ((32,), (64,), (128,), (256,), (512,)),
    "resnet50_v2": ((32,), (64,), (128,), (256,), (512,)),
    "resnext101_32x8d": ((32,), (64,), (128,), (256,), (512,)),
}
# anchor scale factors tried: 2^(k/8) for k in -24..24
_SCALE_STEPS = np.arange(-24, 25)
_MIN_RATIO_SPREAD = 1.5
_MIN_ANCHOR_PX = 4
# a box counts as matched by the anchors when one of them, centred on it, overlaps it this much
ANCHOR_MATCH_IOU = 0.5


def default_anchors(architecture: str) -> tuple[tuple[tuple[int, ...], ...], tuple[float, ...]]:
    """The architecture's anchor sizes per level and aspect ratios; KeyError naming the known ones."""
    if architecture not in DEFAULT_ANCHORS:
        raise KeyError(f"no anchor layout for {architecture!r}; known: {', '.join(DEFAULT_ANCHORS)}")
    return DEFAULT_ANCHORS[architecture], DEFAULT_ASPECT_RATIOS


def anchors_of(settings: TrainSettings) -> tuple[tuple[tuple[int, ...], ...], tuple[float, ...]]:
    """The anchors a model of `settings` is built with: the fitted ones, else the architecture's."""
    sizes, ratios = default_anchors(settings.architecture)
    if settings.anchor_sizes is not None:
        sizes = tuple(tuple(int(s) for s in level) for level in settings.anchor_sizes)
    if settings.aspect_ratios is not None:
        ratios = tuple(float(r) for r in settings.aspect_ratios)
    return sizes, ratios


def check_anchor_layout(settings: TrainSettings) -> None:
    """ValueError unless the anchors have the architecture's number of levels and anchors per location."""
    sizes, ratios = anchors_of(settings)
    default_sizes, default_ratios = default_anchors(settings.architecture)
    if [len(level) for level in sizes] != [len(level) for level in default_sizes] or len(ratios) != len(
        default_ratios
    ):
        raise ValueError(
            f"train.anchor_sizes/aspect_ratios {sizes} × {ratios} do not have the layout of "
            f"{settings.architecture} ({default_sizes} × {default_ratios}): one list per FPN level, the same "
            "number of sizes per level and of aspect ratios"
        )


def best_ious(
    sizes_px: np.ndarray, aspects: np.ndarray, anchor_sizes: np.ndarray, ratios: np.ndarray
) -> np.ndarray:
    """Per box, the IoU with the best-matching centred anchor (shape match only)."""
    box_w, box_h = sizes_px / np.sqrt(aspects), sizes_px * np.sqrt(aspects)
    flat = np.asarray(anchor_sizes, dtype=np.float64).ravel()
    r = np.asarray(ratios, dtype=np.float64)
    anchor_w = (flat[:, None] / np.sqrt(r)[None, :]).ravel()
    anchor_h = (flat[:, None] * np.sqrt(r)[None, :]).ravel()
    inter = np.minimum(box_w[:, None], anchor_w[None, :]) * np.minimum(box_h[:, None], anchor_h[None, :])
    union = (box_w * box_h)[:, None] + (anchor_w * anchor_h)[None, :] - inter
    return np.max(inter / union, axis=1)


def mean_best_iou(
    sizes_px: np.ndarray, aspects: np.ndarray, anchor_sizes: np.ndarray, ratios: np.ndarray
) -> float:
    """Mean over boxes of the IoU with the best centred anchor (NaN without boxes)."""
    if sizes_px.size == 0:
        return float("nan")
    return float(np.mean(best_ious(sizes_px, aspects, anchor_sizes, ratios)))


def matched_share(
    sizes_px: np.ndarray, aspects: np.ndarray, anchor_sizes: np.ndarray, ratios: np.ndarray
) -> float:
    """Share of boxes with a centred anchor of IoU ≥ ANCHOR_MATCH_IOU: the recall the anchors allow at best."""
    if sizes_px.size == 0:
        return float("nan")
    return float(np.mean(best_ious(sizes_px, aspects, anchor_sizes, ratios) >= ANCHOR_MATCH_IOU))


def fit_aspect_ratios(aspects: np.ndarray, n: int) -> tuple[float, ...]:
    """`n` aspect ratios from evenly spaced percentiles (10th to 90th) of the boxes' height / width."""
    if aspects.size == 0:
        return DEFAULT_ASPECT_RATIOS[:n] if n == len(DEFAULT_ASPECT_RATIOS) else tuple([1.0] * n)
    logs = np.log(np.quantile(aspects, np.linspace(0.1, 0.9, n)))
    if n > 1 and logs[-1] - logs[0] < np.log(_MIN_RATIO_SPREAD):
        centre = float(np.median(np.log(aspects)))
        half = np.log(_MIN_RATIO_SPREAD) / 2
        logs = np.linspace(centre - half, centre + half, n)
    return tuple(round(float(np.exp(v)), 3) for v in np.clip(logs, np.log(0.1), np.log(10.0)))


def fit_anchor_sizes(
    layout: tuple[tuple[int, ...], ...], sizes_px: np.ndarray, aspects: np.ndarray, ratios: tuple[float, ...]
) -> tuple[tuple[tuple[int, ...], ...], float]:
    """`layout` scaled by the factor whose anchors match the boxes best (mean best IoU); and that factor."""
    base = np.array([s for level in layout for s in level], dtype=np.float64)
    best_factor, best_iou = 1.0, -1.0
    # nearest to 1 first, and only a strictly better match moves away from it
    for k in sorted(_SCALE_STEPS, key=abs):
        factor = float(2.0 ** (k / 8))
        iou = mean_best_iou(sizes_px, aspects, base * factor, np.asarray(ratios))
        if iou > best_iou + 1e-9:
            best_factor, best_iou = factor, iou
    scaled = tuple(tuple(max(_MIN_ANCHOR_PX, int(round(s * best_factor))) for s in level) for level in layout)
    return scaled, best_factor


def _round8(value: float) -> int:
    return max(8, int(round(value / 8.0)) * 8)


def fit_input_size(train: TrainSettings, fit: FitSettings, boxes: LabelBoxes) -> tuple[float, dict[str, Any]]:
    """The factor the input sizes grow by (≥ 1) and why."""
    short = min(train.min_size_train)
    px = sizes_at_input(boxes, short, train.max_size_train)
    if px.size == 0:
        return 1.0, {"reason": "no boxes"}
    small = float(np.quantile(px, fit.box_quantile))
    info = {f"box_px_q{fit.box_quantile:g}_at_{short}": round(small, 2), "min_box_pixels": fit.min_box_pixels}
    if small >= fit.min_box_pixels:
        return 1.0, {**info, "reason": "the small boxes are already large enough at the profile's input"}
    wanted = fit.min_box_pixels / small
    cap = fit.max_short_side / train.min_size_test
    factor = max(1.0, min(wanted, cap))
    capped = " (capped by fit.max_short_side)" if wanted > cap else ""
    return factor, {
        **info,
        "wanted_factor": round(wanted, 3),
        "reason": f"inputs scaled ×{factor:.2f}{capped}",
    }


@dataclass(frozen=True)
class LabelFit:
    """The train settings fitted to the labels and a record of what was chosen and why (for lineage)."""

    settings: TrainSettings
    report: dict[str, Any] = field(default_factory=dict)


def fit_to_labels(train: TrainSettings, fit: FitSettings, boxes: LabelBoxes) -> LabelFit:
    """`train` with the input size and anchors chosen from `boxes` as `fit` asks (see module docstring)."""
    report: dict[str, Any] = {"boxes": len(boxes)}
    update: dict[str, Any] = {}
    if fit.input_size and len(boxes):
        factor, why = fit_input_size(train, fit, boxes)
        report["input_size"] = why
        if factor > 1.0:
            update = {
                "min_size_train": sorted({_round8(s * factor) for s in train.min_size_train}),
                "max_size_train": _round8(train.max_size_train * factor),
                "min_size_test": _round8(train.min_size_test * factor),
                "max_size_test": _round8(train.max_size_test * factor),
            }
        report["input_size"].update(
            {
                "min_size_train": update.get("min_size_train", list(train.min_size_train)),
                "min_size_test": update.get("min_size_test", train.min_size_test),
            }
        )
    fitted = train.model_copy(update=update)
    if fit.anchors and len(boxes):
        layout, default_ratios = default_anchors(train.architecture)
        sizes_px = sizes_at_input(boxes, fitted.min_size_test, fitted.max_size_test)
        aspects = boxes.aspect_ratios
        default_flat = np.array([s for level in layout for s in level], dtype=np.float64)
        default_match = matched_share(sizes_px, aspects, default_flat, np.asarray(default_ratios))
        anchors: dict[str, Any] = {
            "default_sizes": [list(level) for level in layout],
            "default_aspect_ratios": list(default_ratios),
            "box_px_p05_p50_p95": [round(float(np.quantile(sizes_px, q)), 1) for q in (0.05, 0.5, 0.95)],
            "matched_share_default": round(default_match, 4),
            "mean_best_iou_default": round(
                mean_best_iou(sizes_px, aspects, default_flat, np.asarray(default_ratios)), 4
            ),
        }
        if default_match >= fit.anchor_match_share:
            anchors.update(
                changed=False,
                sizes=anchors["default_sizes"],
                aspect_ratios=anchors["default_aspect_ratios"],
                reason=f"the architecture's anchors match {default_match:.1%} of the boxes at IoU "
                f"≥ {ANCHOR_MATCH_IOU} (≥ fit.anchor_match_share {fit.anchor_match_share:.0%}): kept",
            )
        else:
            ratios = fit_aspect_ratios(aspects, len(default_ratios))
            sizes, factor = fit_anchor_sizes(layout, sizes_px, aspects, ratios)
            flat = np.array([s for level in sizes for s in level], dtype=np.float64)
            anchors.update(
                changed=True,
                sizes=[list(level) for level in sizes],
                aspect_ratios=list(ratios),
                scale=round(factor, 4),
                matched_share=round(matched_share(sizes_px, aspects, flat, np.asarray(ratios)), 4),
                mean_best_iou=round(mean_best_iou(sizes_px, aspects, flat, np.asarray(ratios)), 4),
                reason=f"the architecture's anchors match only {default_match:.1%} of the boxes at IoU "
                f"≥ {ANCHOR_MATCH_IOU}: scaled to the best mean IoU",
            )
            fitted = fitted.model_copy(
                update={"anchor_sizes": anchors["sizes"], "aspect_ratios": anchors["aspect_ratios"]}
            )
        report["anchors"] = anchors
    return LabelFit(settings=fitted, report=report)


def fit_to_split(train: TrainSettings, fit: FitSettings, json_path: Path, classes: Sequence[str]) -> LabelFit:
    """`fit_to_labels` on the boxes of `classes` in one COCO split (the train split: valid and test stay unseen)."""
    return fit_to_labels(train, fit, read_label_boxes(Path(json_path), list(classes)))


def fit_rule(fit: FitSettings) -> str:
    """The fit's rule in one sentence, for lineage."""
    return (
        f"anchors re-fitted (best mean IoU) only when fewer than {fit.anchor_match_share:.0%} of the train boxes "
        f"have an anchor of IoU >= {ANCHOR_MATCH_IOU}; the input grown when the {fit.box_quantile:g} quantile of "
        f"box sizes is under {fit.min_box_pixels:g} px (test short side at most {fit.max_short_side} px)"
    )
