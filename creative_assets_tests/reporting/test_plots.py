import base64

import cv2
import matplotlib.cbook
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from creative_assets.detection.evaluation import presence_metrics
from creative_assets.detection.thresholds import sweep_thresholds
from creative_assets.reporting.plots import (
    accuracy_heatmap,
    accuracy_heatmap_figure,
    confusion_matrices,
    confusion_matrices_figure,
    detections_overlay,
    heatmap_grid,
    heatmap_grid_figure,
    image_grid,
    markdown_image,
    threshold_curve,
    threshold_curve_figure,
)

PORTRAIT = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def cell_texts(ax) -> dict[tuple[int, int], str]:
    """The text drawn at each (row, column) cell of an image axis."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def ticks(labels) -> list[str]:
    return [t.get_text() for t in labels]


def outlined_cells(ax) -> list[tuple[int, int]]:
    """(row, column) of each red outline on a heat map axis."""
    cells = []
    for patch in ax.patches:
        if isinstance(patch, Rectangle):
            x, y = patch.get_xy()
            cells.append((round(y + 0.5), round(x + 0.5)))
    return cells


@pytest.fixture
def trials() -> pd.DataFrame:
    rows = []
    for i, (max_iter, roi) in enumerate([(m, b) for m in (300, 500, 1000) for b in (256, 512, 1024)]):
        for confidence in (0.2, 0.4, 0.6, 0.8):
            rows.append(
                {
                    "trial": f"it{max_iter}_roi{roi}",
                    "max_iter": max_iter,
                    "batch_size_per_image": roi,
                    "confidence": confidence,
                    "accuracy": 0.5 + 0.04 * i - 0.1 * confidence,
                    "AP": float("nan") if i == 0 else 0.1 * i,
                }
            )
    return pd.DataFrame(rows)


def test_accuracy_heatmap_is_a_png(trials):
    h, w, _ = decode(accuracy_heatmap(trials, 0.4)).shape
    assert 150 < w < 800 and 150 < h < 600


def test_accuracy_heatmap_cells_show_each_trials_value_with_the_best_outlined(trials):
    ax = accuracy_heatmap_figure(trials, 0.4).axes[0]
    assert ticks(ax.get_yticklabels()) == ["300", "500", "1000"]  # rows MAX_ITER
    assert ticks(ax.get_xticklabels()) == ["256", "512", "1024"]  # columns BATCH_SIZE_PER_IMAGE
    texts = cell_texts(ax)
    # trial i = 3 · row + column: accuracy 0.5 + 0.04 i - 0.1 × 0.4
    assert texts[(0, 0)] == "0.460" and texts[(1, 2)] == "0.660" and texts[(2, 2)] == "0.780"
    assert outlined_cells(ax) == [(2, 2)]


def test_accuracy_heatmap_plots_another_value_with_missing_cells(trials):
    ax = accuracy_heatmap_figure(trials, 0.2, value="AP").axes[0]
    texts = cell_texts(ax)
    assert texts[(0, 0)] == "–"  # NaN AP
    assert texts[(0, 1)] == "0.100" and texts[(2, 2)] == "0.800"
    assert outlined_cells(ax) == [(2, 2)]
    decode(accuracy_heatmap(trials, 0.2, value="AP"))


def test_accuracy_heatmap_rejects_confidence_without_trials(trials):
    with pytest.raises(ValueError, match="no trials at confidence 0.5"):
        accuracy_heatmap(trials, 0.5)


def test_accuracy_heatmap_rejects_duplicate_grid_cells(trials):
    with pytest.raises(ValueError, match="share MAX_ITER"):
        accuracy_heatmap(pd.concat([trials, trials]), 0.4)


def test_heatmap_grid_is_wider_than_one_panel(trials):
    one = decode(accuracy_heatmap(trials, 0.4))
    grid = decode(heatmap_grid(trials, [0.2, 0.4, 0.6, 0.8]))
    assert grid.shape[1] > one.shape[1]


def test_heatmap_grid_has_a_panel_per_confidence_on_one_colour_scale(trials):
    fig = heatmap_grid_figure(trials, [0.2, 0.4, 0.6, 0.8])
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title().startswith("confidence")]
    assert [ax.get_title() for ax in panels] == [f"confidence {c:g}" for c in (0.2, 0.4, 0.6, 0.8)]
    assert {ax.images[0].get_clim() for ax in panels} == {(0.0, 1.0)}
    assert cell_texts(panels[3])[(0, 0)] == "0.420"  # 0.5 - 0.1 × 0.8


def test_confusion_matrices_take_metrics_or_arrays():
    truth = np.array([True, False, True, False])
    scores = np.array([0.9, 0.5, 0.3, 0.1])
    panels = {c: presence_metrics(truth, scores, c) for c in (0.2, 0.4)}
    panels[0.8] = np.array([[2, 0], [1, 1]])
    fig = confusion_matrices_figure(panels, "face")
    axes = [ax for ax in fig.axes if ax.texts]
    # at 0.2 every score but 0.1 is "present": TN 1, FP 1, FN 0, TP 2
    assert cell_texts(axes[0]) == {(0, 0): "1\n25%", (0, 1): "1\n25%", (1, 0): "0\n0%", (1, 1): "2\n50%"}
    assert axes[0].get_title() == "conf 0.2: acc 0.750"
    assert cell_texts(axes[1])[(1, 1)] == "1\n25%"  # at 0.4 only 0.9 is present
    assert axes[2].get_title() == "conf 0.8: acc 0.750"
    assert ticks(axes[0].get_xticklabels()) == ["absent", "present"] and axes[0].get_ylabel() == "truth"
    decode(confusion_matrices(panels, "face"))


def test_confusion_matrices_reject_other_shapes():
    with pytest.raises(ValueError, match="not \\(2, 2\\)"):
        confusion_matrices({0.5: np.zeros((3, 3))}, "face")


def test_threshold_curve_plots_the_sweep_and_marks_the_chosen_threshold():
    truth = np.array([True, True, False, False, True, False])
    scores = np.array([0.9, 0.4, 0.6, 0.0, 0.7, 0.2])
    sweep = sweep_thresholds(truth, scores, np.round(np.arange(0.2, 1.0, 0.01), 2))
    ax = threshold_curve_figure(sweep, 0.5, "face").axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    for metric in ("accuracy", "precision", "recall", "f1"):
        np.testing.assert_allclose(lines[metric].get_ydata(), sweep[metric].to_numpy())
        np.testing.assert_allclose(lines[metric].get_xdata(), sweep["threshold"].to_numpy())
    assert list(lines["chosen 0.50"].get_xdata()) == [0.5, 0.5]
    decode(threshold_curve(sweep, 0.5, "face"))


def test_detections_overlay_draws_boxes_where_they_are():
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    out = decode(detections_overlay(image, [[40, 80, 160, 180]], ["logo"], [0.9], max_side=100))
    assert out.shape == (100, 100, 3)
    assert out[65, 20].any()  # left edge of the box, at half scale
    assert not out[65, 50].any()  # inside the box stays untouched


def test_detections_overlay_accepts_no_detections_and_grey_images():
    out = decode(detections_overlay(np.full((50, 80), 99, dtype=np.uint8), np.zeros((0, 4)), [], []))
    assert out.shape == (50, 80, 3)


def test_detections_overlay_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="differ"):
        detections_overlay(np.zeros((20, 20, 3), dtype=np.uint8), [[0, 0, 5, 5]], ["a", "b"], [0.5])


def test_detections_overlay_of_a_photo_embeds_under_150_kb():
    photo = cv2.imread(str(PORTRAIT))
    png = detections_overlay(photo, [[149, 100, 380, 331]], ["face"], [0.93])
    assert max(decode(png).shape[:2]) == 400
    assert len(markdown_image(png, "face")) < 150_000


def test_image_grid_lays_out_rows_and_columns():
    images = [np.full((60, 90, 3), 40 * i, dtype=np.uint8) for i in range(5)]
    three_wide = decode(image_grid(images, [f"img/{i}.jpg" for i in range(5)], ncols=3))
    five_wide = decode(image_grid(images, [f"img/{i}.jpg" for i in range(5)], ncols=5))
    assert five_wide.shape[1] > three_wide.shape[1]
    assert five_wide.shape[0] < three_wide.shape[0]


def test_image_grid_rejects_mismatched_captions():
    with pytest.raises(ValueError, match="captions"):
        image_grid([np.zeros((10, 10, 3), dtype=np.uint8)], [], ncols=2)


def test_markdown_image_embeds_png_as_base64():
    png = accuracy_heatmap(
        pd.DataFrame(
            {"max_iter": [300], "batch_size_per_image": [256], "confidence": [0.2], "accuracy": [0.7]}
        ),
        0.2,
    )
    md = markdown_image(png, "accuracy grid")
    assert md.startswith("![accuracy grid](data:image/png;base64,")
    assert base64.b64decode(md[md.index(",") + 1 : -1]) == png


def test_markdown_image_keeps_brackets_out_of_alt_text():
    assert markdown_image(b"\x89PNG", "a [b]\nc").startswith("![a (b) c](")


def _outlined_cells(trials: pd.DataFrame, confidence: float, marked) -> list[tuple[int, int]]:
    """(row, column) of every cell the heat map outlines, read back from the drawn rectangles."""
    from matplotlib.figure import Figure

    from creative_assets.reporting.plots import _draw_heatmap, _grid_pivot

    ax = Figure().add_subplot()
    _draw_heatmap(ax, _grid_pivot(trials, confidence, "accuracy"), "t", 0.0, 1.0, marked)
    return [(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches]


def test_the_heat_map_outlines_the_chosen_cell_not_the_panels_own_best(trials):
    # accuracy grows with the trial index, so each panel's best cell is MAX_ITER 1000 × 1024 (row 2, column 2)
    assert _outlined_cells(trials, 0.4, None) == [(2, 2)]
    # the trial chosen on the mean over confidences (with its tie rules) is outlined wherever it sits
    assert _outlined_cells(trials, 0.4, (500, 256)) == [(1, 0)]


def test_a_marked_cell_outside_the_grid_is_an_error(trials):
    with pytest.raises(ValueError, match="not in the grid"):
        heatmap_grid(trials, [0.4], marked=(700, 256))
