"""Tiled inference: windows, merging, and a detector that misses small things until it sees tiles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from creative_assets.detection.backend import Predictions
from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.batch_rows import LoadedModel
from creative_assets.detection.batches import model_fingerprint, work_items
from creative_assets.detection.tiling import TiledDetector, class_nms, tile_windows
from creative_assets.layout import DataRoot
from creative_assets.settings import TilingSettings, load_settings
from creative_assets.tables.warehouse import read_detections
from creative_assets_tests.support.colour_brand import BRAND, ColourBlobDetector, manifest_row


class ResizingDetector:
    """The colour-blob detector behind a model's input resize: the short side becomes `test_size` pixels
    before detection (as a Faster R-CNN transform does), and blobs under 16 px² there are not found."""

    backend = "colour-blobs"
    device = "cpu"

    def __init__(self, test_size: int = 64) -> None:
        self.inner = ColourBlobDetector(["logo"])
        self.classes = self.inner.classes
        self.test_size = test_size
        self.calls: list[int] = []  # images per predict call

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        self.calls.append(len(images))
        out = []
        for image in images:
            scale = self.test_size / min(image.shape[:2])
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            pred = self.inner.predict([small], score_floor)[0]
            out.append(Predictions(pred.boxes / scale, pred.scores, pred.labels))
        return out


def still_with_logos(size: int, squares: list[tuple[int, int, int]]) -> np.ndarray:
    """A light grey still with filled red squares (x, y, side)."""
    image = np.full((size, size, 3), 235, np.uint8)
    for x, y, side in squares:
        cv2.rectangle(image, (x, y), (x + side - 1, y + side - 1), (0, 0, 255), thickness=-1)
    return image


def test_windows_cover_the_image_overlap_and_end_flush_with_its_edges():
    windows = tile_windows(300, 500, 200, 0.25)
    xs = sorted({w[0] for w in windows})
    ys = sorted({w[1] for w in windows})
    assert xs == [0, 150, 300] and ys == [0, 100]  # step 150; the last tile flush with the edge
    assert all(x1 - x0 == 200 and y1 - y0 == 200 for x0, y0, x1, y1 in windows)
    covered = np.zeros((300, 500), bool)
    for x0, y0, x1, y1 in windows:
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tile_windows(200, 180, 200, 0.25) == []  # fits in one tile: not cut
    assert tile_windows(150, 420, 200, 0.0) == [(0, 0, 200, 150), (200, 0, 400, 150), (220, 0, 420, 150)]


def test_nms_keeps_the_best_box_of_each_overlapping_group_per_class():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 40, 40], [30, 30, 45, 45]],
        np.float32,
    )
    scores = np.array([0.6, 0.9, 0.7, 0.5, 0.95, 0.8], np.float32)
    labels = np.array([0, 0, 1, 0, 2, 2])
    # class 0: box 0 is box 1's duplicate; class 1: alone; class 2: box 5 overlaps box 4 by 100/225 of itself
    assert class_nms(boxes, scores, labels, 0.5).tolist() == [4, 1, 5, 2, 3]
    assert class_nms(boxes, scores, labels, 0.4).tolist() == [4, 1, 2, 3]
    fragment_first = np.array([[0, 0, 5, 10], [0, 0, 10, 10]], np.float32)
    same = np.array([0.9, 0.9], np.float32)
    assert class_nms(fragment_first, same, np.array([0, 0]), 0.5).tolist() == [1]  # a tie: the whole box


def test_a_small_logo_is_missed_whole_and_found_in_tiles_at_its_true_position():
    image = still_with_logos(512, [(300, 420, 10), (40, 40, 200)])  # a 10 px logo and a large one
    plain = ResizingDetector(test_size=64)
    whole = plain.predict([image])[0]
    assert len(whole) == 1  # only the large logo survives the resize to 64 px
    tiled = TiledDetector(ResizingDetector(test_size=64), TilingSettings(enabled=True, tile_size=64))
    found = tiled.predict([image, image])
    assert tiled.inner.calls == [2 * (1 + 11 * 11)]  # one batched call: 2 × (whole + 11 × 11 tiles)
    for pred in found:
        small = [b for b in pred.boxes.tolist() if b[2] - b[0] < 40]
        assert len(small) == 1  # found once, the tiles that share it merged
        assert small[0] == pytest.approx([300, 420, 310, 430], abs=1.5)
        large = [b for b in pred.boxes.tolist() if b[2] - b[0] >= 40]
        assert len(large) == 1  # the tiles' fragments of it lie inside its whole box and are merged
        assert large[0] == pytest.approx([40, 40, 240, 240], abs=4)


def test_tiling_changes_the_fingerprint_and_plain_models_keep_theirs():
    plain = LoadedModel("logo", "m1", ColourBlobDetector(["logo"]), {"logo": 0.5})
    tiled = LoadedModel(
        "logo", "m1", TiledDetector(plain.detector, TilingSettings(enabled=True)), {"logo": 0.5}
    )
    other = LoadedModel(
        "logo",
        "m1",
        TiledDetector(plain.detector, TilingSettings(enabled=True, tile_size=256)),
        {"logo": 0.5},
    )
    fingerprints = {model_fingerprint([m.describe()], 0.2) for m in (plain, tiled, other)}
    assert len(fingerprints) == 3
    assert "inference" not in model_fingerprint([plain.describe()], 0.2)


def test_tiled_detections_land_in_the_same_table_in_image_pixels(tmp_path: Path):
    root = DataRoot(tmp_path / "data")
    path = root.creatives(BRAND) / "big.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), still_with_logos(256, [(200, 30, 6)]))
    manifest = pd.DataFrame([manifest_row(root, "big.png", "image", path, width=256, height=256)])
    frames = pd.DataFrame(columns=["brand", "creative_id", "frame_index", "timestamp_s", "path"])
    items = work_items(manifest, frames)
    tiling = TilingSettings(enabled=True, tile_size=64)
    for name, detector in {
        "plain": ResizingDetector(),
        "tiled": TiledDetector(ResizingDetector(), tiling),
    }.items():
        run_detection(
            root,
            BRAND,
            items,
            [LoadedModel("logo", "m1", detector, {"logo": 0.5})],
            root.root / name / f"brand={BRAND}",
            batch_size=10,
            images_per_forward=4,
            score_floor=0.2,
            loader_workers=0,
        )
    assert read_detections(root.root / "plain" / f"brand={BRAND}").empty
    tiled_rows = read_detections(root.root / "tiled" / f"brand={BRAND}")
    assert len(tiled_rows) == 1 and tiled_rows["backend"].iloc[0] == "colour-blobs"
    row = tiled_rows.iloc[0]
    assert (row["x_min"], row["y_min"], row["x_max"], row["y_max"]) == pytest.approx(
        (200, 30, 206, 36), abs=1.5
    )


def test_tiling_is_a_per_object_setting_off_by_default(tmp_path: Path):
    cfg = load_settings(tmp_path, profile="smoke")
    assert not cfg.object("logo").tiling.enabled
    objects = [{"name": "logo", "tiling": {"enabled": True, "tile_size": 256}}, {"name": "product"}]
    cfg = load_settings(tmp_path, profile="smoke", overrides={"objects": objects})
    assert cfg.object("logo").tiling.enabled and cfg.object("logo").tiling.tile_size == 256
    assert not cfg.object("product").tiling.enabled
