"""Training data: COCO records, detectron2-style augmentation and the seeded infinite sampler."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from creative_assets.detection.augmentation import augment, hflip_boxes, resize_shortest_edge_shape
from creative_assets.detection.coco_data import (
    CocoDetectionDataset,
    InfiniteTrainingSampler,
    load_records,
    read_bgr,
)
from creative_assets_tests.support.coco_builders import write_toy_coco

RED = (0, 0, 255)  # BGR
BLUE = (255, 0, 0)


def test_resize_shortest_edge_scales_short_side_to_choice():
    assert resize_shortest_edge_shape(240, 320, 160, 1333) == (160, 213)
    assert resize_shortest_edge_shape(320, 240, 160, 1333) == (213, 160)


def test_resize_shortest_edge_caps_long_side_at_max_size():
    # 100×400 to short side 160 would be 160×640; the 256 cap scales both sides by 0.4
    assert resize_shortest_edge_shape(100, 400, 160, 256) == (64, 256)


def test_hflip_boxes_mirrors_x_coordinates():
    boxes = np.array([[10, 5, 30, 25]], np.float32)
    np.testing.assert_array_equal(hflip_boxes(boxes, 100), [[70, 5, 90, 25]])


def test_augment_flip_moves_boxes_with_the_pixels():
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:30, 5:25] = RED
    boxes = np.array([[5, 10, 25, 30]], np.float32)
    out, out_boxes = augment(img, boxes, np.random.default_rng(0), [60], 1000, flip_prob=1.0)
    assert out.shape == img.shape
    np.testing.assert_array_equal(out_boxes, [[55, 10, 75, 30]])
    x0, y0, x1, y1 = out_boxes[0].astype(int)
    assert (out[y0:y1, x0:x1] == RED).all()
    assert out[:, :x0].max() == 0 and out[:, x1:].max() == 0


def test_augment_resize_scales_boxes_with_the_image():
    img = np.zeros((60, 80, 3), np.uint8)
    boxes = np.array([[8, 6, 40, 30]], np.float32)
    out, out_boxes = augment(img, boxes, np.random.default_rng(0), [120], 1000, flip_prob=0.0)
    assert out.shape[:2] == (120, 160)
    np.testing.assert_allclose(out_boxes, [[16, 12, 80, 60]])


def test_augment_draws_short_side_from_the_choices():
    img = np.zeros((60, 80, 3), np.uint8)
    boxes = np.zeros((0, 4), np.float32)
    rng = np.random.default_rng(1)
    seen = {augment(img, boxes, rng, [30, 45, 60], 1000)[0].shape[0] for _ in range(40)}
    assert seen == {30, 45, 60}


def test_records_keep_only_requested_classes_and_skip_crowd(tmp_path):
    split = write_toy_coco(tmp_path)
    coco = json.loads(split.json_path.read_text())
    coco["annotations"][0]["iscrowd"] = 1
    split.json_path.write_text(json.dumps(coco))
    records, stats = load_records(split, ["logo"])
    assert len(records) == 8
    assert all((r.labels == 0).all() for r in records)
    assert stats["crowd"] == 1
    assert stats["other_category"] == sum(1 for a in coco["annotations"] if a["category_id"] == 2)


def test_records_drop_boxes_without_area(tmp_path):
    split = write_toy_coco(tmp_path)
    coco = json.loads(split.json_path.read_text())
    coco["annotations"][0]["bbox"][2] = 0
    split.json_path.write_text(json.dumps(coco))
    records, stats = load_records(split, ["logo", "product"])
    assert stats["empty_box"] == 1
    assert sum(len(r.boxes) for r in records) == len(coco["annotations"]) - 1


def test_dataset_keeps_images_without_boxes_as_negatives(tmp_path):
    split = write_toy_coco(tmp_path)
    ds = CocoDetectionDataset(split, ["logo", "product"], [96], 200)
    empty = [i for i, r in enumerate(ds.records) if len(r.boxes) == 0]
    assert len(ds) == 8 and empty
    image, target = ds[(empty[0], 0)]
    assert image.shape[0] == 3
    assert tuple(target["boxes"].shape) == (0, 4)
    assert tuple(target["labels"].shape) == (0,)


def test_dataset_gives_rgb_floats_and_background_free_labels(tmp_path):
    split = write_toy_coco(tmp_path)
    ds = CocoDetectionDataset(split, ["logo", "product"], [96], 200, flip_prob=0.0)
    image, target = ds[(0, 0)]
    x0, y0, x1, y1 = target["boxes"][0].round().int().tolist()
    patch = image[:, y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]
    assert float(image.max()) <= 1.0
    assert patch[0].min() > 0.9 and patch[2].max() < 0.1  # red lands in the R channel
    assert target["labels"].min() >= 1  # 0 is torchvision's background


def test_sampler_visits_every_image_once_per_epoch_and_is_seeded():
    first = list(itertools.islice(iter(InfiniteTrainingSampler(5, seed=3)), 15))
    again = list(itertools.islice(iter(InfiniteTrainingSampler(5, seed=3)), 15))
    other = list(itertools.islice(iter(InfiniteTrainingSampler(5, seed=4)), 15))
    assert first == again and first != other
    for epoch in range(3):
        assert sorted(i for i, _ in first[epoch * 5 : epoch * 5 + 5]) == [0, 1, 2, 3, 4]


def test_sampler_refuses_an_empty_split():
    with pytest.raises(ValueError, match="no images"):
        InfiniteTrainingSampler(0, seed=0)


def test_read_bgr_names_an_unreadable_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg"):
        read_bgr(bad)
