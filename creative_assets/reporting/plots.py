"""Figures for asset metadata: grid heatmaps, confusion matrices, threshold curves, sample images.

Every function returns PNG bytes; `markdown_image` turns them into the markdown Dagster renders inline.
Figures are built with `matplotlib.figure.Figure` and rendered by Agg directly, without pyplot, so nothing
touches matplotlib's global backend or figure registry (safe in threads and in any process). Images are kept
small (about 90 dpi, a few inches wide, photos palettised when large): each under 150 kB of base64.
"""

from __future__ import annotations

import base64
import io
import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from PIL import Image

from creative_assets.detection.evaluation import PresenceMetrics

DPI = 90
# Above this many bytes a PNG is re-encoded with a palette of 256, then 128, then 64 colours (photos
# compress badly as RGB PNG); 100 kB of PNG is about 134 kB of base64.
PNG_BUDGET = 100_000
_METRIC_STYLES = {"accuracy": "-", "precision": "--", "recall": ":", "f1": "-."}
# tab10 in BGR, so OpenCV drawings match matplotlib's default colours.
_PALETTE_BGR = [
    (180, 119, 31),
    (14, 127, 255),
    (44, 160, 44),
    (40, 39, 214),
    (189, 103, 148),
    (75, 86, 140),
    (194, 119, 227),
    (127, 127, 127),
    (34, 189, 188),
    (207, 190, 23),
]


def _shrink_png(png: bytes) -> bytes:
    if len(png) <= PNG_BUDGET:
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB")
    best = png
    for colours in (256, 128, 64):
        out = io.BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(out, format="PNG", optimize=True)
        if out.tell() < len(best):
            best = out.getvalue()
        if len(best) <= PNG_BUDGET:
            break
    return best


def _figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return _shrink_png(buf.getvalue())


def _encode_png(image_bgr: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", image_bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return _shrink_png(buf.tobytes())


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown `![alt](data:image/png;base64,…)` that Dagster's UI renders inline via MetadataValue.md."""
    mime = "image/jpeg" if png[:2] == b"\xff\xd8" else "image/png"
    clean = " ".join(alt.replace("[", "(").replace("]", ")").split())
    return f"![{clean}](data:{mime};base64,{base64.b64encode(png).decode('ascii')})"


# Grid-search heatmaps ------------------------------------------------------------------------------------


def _grid_pivot(trials: pd.DataFrame, confidence: float, value: str) -> pd.DataFrame:
    missing = {"max_iter", "batch_size_per_image", "confidence", value} - set(trials.columns)
    if missing:
        raise ValueError(f"trials lacks columns {sorted(missing)}")
    conf = trials["confidence"].to_numpy(dtype=np.float64)
    rows = trials[np.isclose(conf, confidence)]
    if rows.empty:
        raise ValueError(f"no trials at confidence {confidence}; have {sorted(set(conf.tolist()))}")
    if rows.duplicated(["max_iter", "batch_size_per_image"]).any():
        raise ValueError(f"several trials share MAX_ITER and BATCH_SIZE_PER_IMAGE at confidence {confidence}")
    pivot = rows.pivot(index="max_iter", columns="batch_size_per_image", values=value)
    return pivot.sort_index().sort_index(axis=1).astype("float64")


def marked_position(pivot: pd.DataFrame, marked: tuple[int, int] | None) -> tuple[int, int] | None:
    """(row, column) of the cell to outline: the chosen (MAX_ITER, BATCH_SIZE_PER_IMAGE) when given, else the
    panel's best value (the first: fewest iterations, then the smallest ROI batch); None if nothing to mark."""
    if marked is not None:
        max_iter, batch = marked
        if max_iter not in pivot.index or batch not in pivot.columns:
            raise ValueError(f"the marked cell {marked} is not in the grid")
        return int(pivot.index.get_loc(max_iter)), int(pivot.columns.get_loc(batch))
    data = pivot.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(data).any():
        return None
    i, j = np.unravel_index(np.nanargmax(data), data.shape)
    return int(i), int(j)


def _draw_heatmap(
    ax: Axes,
    pivot: pd.DataFrame,
    title: str,
    vmin: float,
    vmax: float,
    marked: tuple[int, int] | None = None,
) -> AxesImage:
    data = pivot.to_numpy(dtype=np.float64, na_value=np.nan)
    image = ax.imshow(data, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(data.shape[1]), labels=[str(c) for c in pivot.columns])
    ax.set_yticks(range(data.shape[0]), labels=[str(r) for r in pivot.index])
    ax.set_xlabel("BATCH_SIZE_PER_IMAGE")
    ax.set_ylabel("MAX_ITER")
    ax.set_title(title, fontsize=10)
    mid = (vmin + vmax) / 2
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            v = data[i, j]
            text, colour = ("–", "black") if np.isnan(v) else (f"{v:.3f}", "black" if v > mid else "white")
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=9)
    position = marked_position(pivot, marked)
    if position is not None:
        i, j = position
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3))
    return image


def _value_range(values: np.ndarray, value: str) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if value in ("accuracy", "precision", "recall", "f1"):
        return 0.0, 1.0
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def accuracy_heatmap_figure(trials: pd.DataFrame, confidence: float, value: str = "accuracy") -> Figure:
    """Heatmap of `value` over the grid at one confidence: rows MAX_ITER, columns BATCH_SIZE_PER_IMAGE.

    `trials` is long format, one row per (trial, confidence), with columns max_iter, batch_size_per_image,
    confidence and `value`. Cells are annotated; the best one is outlined in red.
    """
    pivot = _grid_pivot(trials, confidence, value)
    vmin, vmax = _value_range(pivot.to_numpy(dtype=np.float64, na_value=np.nan), value)
    fig = Figure(figsize=(4.2, 3.2))
    ax = fig.add_subplot()
    image = _draw_heatmap(ax, pivot, f"{value} at confidence {confidence:g}", vmin, vmax)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def accuracy_heatmap(trials: pd.DataFrame, confidence: float, value: str = "accuracy") -> bytes:
    """`accuracy_heatmap_figure` as a PNG."""
    return _figure_png(accuracy_heatmap_figure(trials, confidence, value))


def heatmap_grid_figure(
    trials: pd.DataFrame,
    confidences: Sequence[float],
    value: str = "accuracy",
    marked: tuple[int, int] | None = None,
) -> Figure:
    """One heatmap panel per confidence on a shared colour scale (the case study's Figure 1).

    `marked` = (MAX_ITER, BATCH_SIZE_PER_IMAGE) of the chosen trial, outlined in every panel: the choice is
    made on the mean over confidences, so one panel's own best cell may lie elsewhere. Without it each panel
    outlines its best cell.
    """
    if not confidences:
        raise ValueError("heatmap_grid needs at least one confidence")
    pivots = [_grid_pivot(trials, c, value) for c in confidences]
    all_values = np.concatenate([p.to_numpy(dtype=np.float64, na_value=np.nan).ravel() for p in pivots])
    vmin, vmax = _value_range(all_values, value)
    ncols = math.ceil(math.sqrt(len(pivots)))
    nrows = math.ceil(len(pivots) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.9 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    image = None
    for ax, c, pivot in zip(axes, confidences, pivots, strict=False):
        image = _draw_heatmap(ax, pivot, f"confidence {c:g}", vmin, vmax, marked)
    for ax in axes[len(pivots) :]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[: len(pivots)]), shrink=0.8, label=value)
    return fig


def heatmap_grid(
    trials: pd.DataFrame,
    confidences: Sequence[float],
    value: str = "accuracy",
    marked: tuple[int, int] | None = None,
) -> bytes:
    """`heatmap_grid_figure` as a PNG."""
    return _figure_png(heatmap_grid_figure(trials, confidences, value, marked))


# Evaluation figures ----------------------------------------------------------------------------------------


def confusion_matrices_figure(
    metrics_by_confidence: Mapping[float, PresenceMetrics | np.ndarray], title: str = "presence"
) -> Figure:
    """2×2 confusion matrices, one panel per confidence (the case study's Figure 2).

    Values are PresenceMetrics or 2×2 arrays laid out [[TN, FP], [FN, TP]] (rows truth, columns predicted).
    """
    if not metrics_by_confidence:
        raise ValueError("confusion_matrices needs at least one confidence")
    items = sorted(metrics_by_confidence.items())
    matrices = []
    for confidence, m in items:
        cm = m.confusion() if isinstance(m, PresenceMetrics) else np.asarray(m)
        if cm.shape != (2, 2):
            raise ValueError(f"confusion matrix at confidence {confidence} has shape {cm.shape}, not (2, 2)")
        matrices.append(cm)
    fig = Figure(figsize=(2.6 * len(items), 2.8), layout="constrained")
    axes = fig.subplots(1, len(items), squeeze=False).ravel()
    for ax, (confidence, _), cm in zip(axes, items, matrices, strict=True):
        total = cm.sum()
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
        for i in range(2):
            for j in range(2):
                share = f"\n{cm[i, j] / total:.0%}" if total else ""
                colour = "white" if cm[i, j] > cm.max() / 2 else "black"
                ax.text(j, i, f"{int(cm[i, j])}{share}", ha="center", va="center", color=colour, fontsize=9)
        ax.set_xticks([0, 1], labels=["absent", "present"])
        ax.set_yticks([0, 1], labels=["absent", "present"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("truth")
        accuracy = (cm[0, 0] + cm[1, 1]) / total if total else float("nan")
        ax.set_title(f"conf {confidence:g}: acc {accuracy:.3f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def confusion_matrices(
    metrics_by_confidence: Mapping[float, PresenceMetrics | np.ndarray], title: str = "presence"
) -> bytes:
    """`confusion_matrices_figure` as a PNG."""
    return _figure_png(confusion_matrices_figure(metrics_by_confidence, title))


def threshold_curve_figure(sweep: pd.DataFrame, chosen: float, title: str = "threshold sweep") -> Figure:
    """Accuracy, precision, recall and F1 against the score threshold, with the chosen threshold marked."""
    fig = Figure(figsize=(5.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    for metric, style in _METRIC_STYLES.items():
        ax.plot(sweep["threshold"], sweep[metric], style, label=metric, linewidth=1.5)
    ax.axvline(chosen, color="red", linewidth=1, label=f"chosen {chosen:.2f}")
    ax.set_xlabel("score threshold")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def threshold_curve(sweep: pd.DataFrame, chosen: float, title: str = "threshold sweep") -> bytes:
    """`threshold_curve_figure` as a PNG."""
    return _figure_png(threshold_curve_figure(sweep, chosen, title))


# Sample images -------------------------------------------------------------------------------------------


def _as_bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")


def _fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    import cv2

    scale = min(1.0, max_side / max(image.shape[:2]))
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image, scale


def _colour(label: str) -> tuple[int, int, int]:
    # crc32, not hash(): the same label gets the same colour in every process.
    return _PALETTE_BGR[zlib.crc32(label.encode("utf-8")) % len(_PALETTE_BGR)]


def detections_overlay(
    image_bgr: np.ndarray,
    boxes: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    scores: np.ndarray | Sequence[float],
    max_side: int = 400,
) -> bytes:
    """A creative with its detections drawn (box, label, score), shrunk to `max_side`, as PNG."""
    import cv2

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if not (len(boxes) == len(labels) == len(scores)):
        raise ValueError(f"{len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores differ")
    canvas, scale = _fit(_as_bgr(image_bgr), max_side)
    canvas = canvas.copy()
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for (x0, y0, x1, y1), label, score in zip(boxes * scale, labels, scores, strict=True):
        colour = _colour(label)
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.rectangle(canvas, p0, p1, colour, 2)
        text = f"{label} {score:.2f}"
        (tw, th), base = cv2.getTextSize(text, font, font_scale, 1)
        ty = max(p0[1], th + base + 2)  # keep the caption inside the image for boxes at the top edge
        cv2.rectangle(canvas, (p0[0], ty - th - base - 2), (p0[0] + tw + 2, ty), colour, cv2.FILLED)
        cv2.putText(
            canvas, text, (p0[0] + 1, ty - base - 1), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return _encode_png(canvas)


def image_grid(
    images: Sequence[np.ndarray], captions: Sequence[str], ncols: int = 4, thumb_side: int = 200
) -> bytes:
    """Thumbnails (BGR, as OpenCV reads them) in a grid with a caption under each."""
    import cv2

    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if not images:
        raise ValueError("image_grid needs at least one image")
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    fig = Figure(figsize=(2.0 * ncols, 2.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, caption in zip(axes, images, captions, strict=False):
        small, _ = _fit(_as_bgr(image), thumb_side)
        ax.imshow(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        ax.set_title(caption if len(caption) <= 28 else "…" + caption[-27:], fontsize=7)
    return _figure_png(fig)
