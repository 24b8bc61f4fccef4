"""Training augmentation: boxes follow every geometric step, the nuisances never wipe a labelled object out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from creative_assets.detection.augmentation import augment, cutout, jitter_factor
from creative_assets.reporting.plots import image_grid
from creative_assets.settings import AugmentSettings

GREY = 128
# every augmentation at least as strong as its default, and always on
EVERYTHING = AugmentSettings(
    scale_jitter_prob=1.0,
    blur_prob=1.0,
    jpeg_prob=1.0,
    color_prob=1.0,
    cutout_prob=1.0,
    jpeg_quality=[25, 60],
)


def scene(squares: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A grey 480×640 still with pure red squares (x, y, side) and their boxes, xyxy."""
    image = np.full((480, 640, 3), GREY, np.uint8)
    boxes = []
    for x, y, side in squares:
        image[y : y + side, x : x + side] = (0, 0, 255)
        boxes.append((x, y, x + side, y + side))
    return image, np.array(boxes, dtype=np.float32)


def red_mask(image: np.ndarray) -> np.ndarray:
    """Pixels whose red clearly dominates (robust to blur, JPEG and colour jitter)."""
    b, g, r = (image[:, :, k].astype(int) for k in range(3))
    return (r - np.maximum(b, g)) > 40


def draw(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    out = image.copy()
    for x0, y0, x1, y1 in boxes.round().astype(int):
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 255, 0), 1)
    return out


def check_sample(out: np.ndarray, out_boxes: np.ndarray, n_boxes: int, seed: int, cutout_on: bool) -> None:
    height, width = out.shape[:2]
    assert out_boxes.shape == (n_boxes, 4)
    assert (out_boxes[:, [0, 1]] >= -1e-3).all()
    assert (out_boxes[:, 2] <= width + 1e-3).all() and (out_boxes[:, 3] <= height + 1e-3).all()
    red = red_mask(out)
    inside = np.zeros_like(red)
    for x0, y0, x1, y1 in out_boxes.round().astype(int):
        # at most half of a box is ever covered by cutout; blur softens its edges
        assert red[y0:y1, x0:x1].mean() > 0.3, f"seed {seed}: box {x0, y0, x1, y1} lost its object"
        inside[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = True
    if not cutout_on:  # (a cutout patch may itself be red)
        # no red is left outside the boxes: they moved with the pixels (resize, jitter, flip)
        assert red[~inside].mean() < 0.002, f"seed {seed}: red outside the boxes"


def test_augmented_samples_keep_their_boxes_on_the_objects(tmp_path):
    image, boxes = scene([(40, 60, 60), (300, 200, 120), (560, 400, 40)])
    no_cutout = EVERYTHING.model_copy(update={"cutout_prob": 0.0})
    samples, captions = [], []
    for seed in range(16):
        for settings in (EVERYTHING, no_cutout):
            rng = np.random.default_rng(seed)
            out, out_boxes = augment(image, boxes, rng, [144, 160, 176], 256, settings)
            check_sample(out, out_boxes, len(boxes), seed, settings.cutout_prob > 0)
            samples.append(draw(out, out_boxes))
            captions.append(f"seed {seed}{'' if settings.cutout_prob else ', no cutout'}")
    grid = tmp_path / "augmented_samples.png"
    grid.write_bytes(image_grid(samples, captions, ncols=4))
    assert cv2.imread(str(grid)) is not None  # the grid to check by eye


def test_the_same_seed_gives_the_same_sample():
    image, boxes = scene([(40, 60, 60)])
    first = augment(image, boxes, np.random.default_rng(7), [160], 256, EVERYTHING)
    second = augment(image, boxes, np.random.default_rng(7), [160], 256, EVERYTHING)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_disabled_augmentation_is_resize_and_flip_only():
    image, boxes = scene([(40, 60, 60)])
    plain = augment(image, boxes, np.random.default_rng(3), [160], 256)
    off = augment(
        image, boxes, np.random.default_rng(3), [160], 256, EVERYTHING.model_copy(update={"enabled": False})
    )
    np.testing.assert_array_equal(plain[0], off[0])
    np.testing.assert_array_equal(plain[1], off[1])


def test_scale_jitter_never_shrinks_the_smallest_box_below_keep_box_pixels():
    settings = AugmentSettings(scale_jitter=[0.25, 1.0], keep_box_pixels=10)
    # a 12 px box at scale 1: a factor below 10/12 would shrink it under 10 px
    boxes = np.array([[0, 0, 12, 12], [20, 20, 80, 80]], dtype=np.float32)
    factors = [jitter_factor(np.random.default_rng(s), boxes, 1.0, settings) for s in range(200)]
    assert min(factors) >= 10 / 12 - 1e-9
    assert max(factors) <= 1.0 + 1e-9


def test_small_boxes_stay_at_least_keep_box_pixels_through_the_whole_augmentation():
    image, boxes = scene([(100, 100, 36)])  # 12 px at a 160 px input
    settings = AugmentSettings(scale_jitter=[0.5, 1.25], scale_jitter_prob=1.0, keep_box_pixels=10)
    for seed in range(30):
        _, out = augment(image, boxes, np.random.default_rng(seed), [160], 1000, settings)
        side = np.sqrt((out[:, 2] - out[:, 0]) * (out[:, 3] - out[:, 1]))
        assert side.min() >= 10 - 0.5


@pytest.mark.parametrize("max_cover", [0.2, 0.5])
def test_cutout_never_covers_more_than_its_share_of_a_box(max_cover):
    image, boxes = scene([(100, 100, 50), (300, 300, 30)])
    settings = AugmentSettings(cutout_max_patches=5, cutout_max_size=0.5, cutout_max_box_cover=max_cover)
    for seed in range(40):
        out, patches = cutout(image, boxes, np.random.default_rng(seed), settings)
        hidden = ~red_mask(out)
        for x0, y0, x1, y1 in boxes.astype(int):
            assert hidden[y0:y1, x0:x1].mean() <= min(1.0, max_cover * len(patches)) + 1e-9
            for px0, py0, px1, py1 in patches:
                iw = max(0, min(x1, px1) - max(x0, px0))
                ih = max(0, min(y1, py1) - max(y0, py0))
                assert iw * ih <= max_cover * (x1 - x0) * (y1 - y0) + 1e-9
