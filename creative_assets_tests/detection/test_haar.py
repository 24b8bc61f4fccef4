import shutil

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from creative_assets.detection.evaluation import PresenceMetrics, load_ground_truth
from creative_assets.detection.haar import (
    HAAR_CASCADES,
    HaarCascadeMissingError,
    haar_baseline,
    haar_predictions,
    load_cascade,
)
from creative_assets_tests.support.coco_builders import write_coco

# A real portrait bundled with matplotlib: a frontal, slightly smiling face.
PORTRAIT = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
FACE_XYWH = [149, 100, 231, 231]
MOUTH_XYWH = [215, 250, 104, 52]


@pytest.fixture
def split(tmp_path):
    """A portrait with a face and a smile box, and a flat grey image with neither."""
    root = tmp_path / "images"
    (root / "people").mkdir(parents=True)
    shutil.copy(PORTRAIT, root / "people" / "portrait.jpg")
    cv2.imwrite(str(root / "flat.png"), np.full((240, 320, 3), 128, dtype=np.uint8))
    gt = load_ground_truth(
        write_coco(
            tmp_path / "valid.json",
            images=[(1, "people/portrait.jpg"), (2, "flat.png")],
            boxes=[(1, 1, FACE_XYWH), (1, 2, MOUTH_XYWH)],
            categories=[(1, "face"), (2, "smile")],
            size=(512, 600),
        )
    )
    return gt, root


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("class_name", sorted(HAAR_CASCADES))
def test_bundled_cascades_load(class_name):
    assert not load_cascade(class_name).empty()


def test_load_cascade_rejects_class_without_cascade():
    with pytest.raises(ValueError, match="no Haar cascade for 'logo'"):
        load_cascade("logo")


def test_load_cascade_says_which_opencv_to_install_when_files_are_missing(monkeypatch, tmp_path):
    # OpenCV 5 wheels ship no cascade files: an empty data folder looks the same.
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path))
    with pytest.raises(HaarCascadeMissingError, match="opencv-python-headless<5"):
        load_cascade("face")


def test_face_baseline_finds_the_portrait_face_and_nothing_on_flat_image(split):
    gt, root = split
    m = haar_baseline(gt, root, "face")
    assert isinstance(m, PresenceMetrics)
    assert (m.n, m.tp, m.tn, m.fp, m.fn) == (2, 1, 1, 0, 0)


def test_smile_baseline_finds_the_smile_inside_the_face(split):
    gt, root = split
    m = haar_baseline(gt, root, "smile")
    assert (m.n, m.tp, m.tn) == (2, 1, 1)


def test_haar_predictions_label_is_the_class_index_and_score_one(split):
    gt, root = split
    p = haar_predictions(gt, root, "smile")
    assert set(p) == {1, 2}
    assert len(p[1]) >= 1 and len(p[2]) == 0
    assert p[1].labels.tolist() == [1] * len(p[1])
    assert p[1].scores.tolist() == [1.0] * len(p[1])


def test_haar_predictions_boxes_are_in_original_pixels_when_image_is_shrunk(split):
    gt, root = split
    p = haar_predictions(gt, root, "face", max_side=300)
    x, y, w, h = FACE_XYWH
    assert max(iou(box, [x, y, x + w, y + h]) for box in p[1].boxes) > 0.6


def test_haar_predictions_refuse_a_file_outside_the_image_root(tmp_path):
    gt = load_ground_truth(
        write_coco(tmp_path / "bad.json", images=[(1, "../outside.jpg")], boxes=[], categories=[(1, "face")])
    )
    (tmp_path / "images").mkdir()
    with pytest.raises(ValueError, match="leaves the image root"):
        haar_predictions(gt, tmp_path / "images", "face")


def test_smile_box_lies_on_the_mouth(split):
    gt, root = split
    p = haar_predictions(gt, root, "smile")
    x, y, w, h = MOUTH_XYWH
    assert max(iou(box, [x, y, x + w, y + h]) for box in p[1].boxes) > 0.5


def test_haar_baseline_scores_a_differently_named_category_with_a_named_cascade(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    shutil.copy(PORTRAIT, root / "portrait.jpg")
    gt = load_ground_truth(
        write_coco(
            tmp_path / "valid.json",
            images=[(1, "portrait.jpg")],
            boxes=[(1, 7, FACE_XYWH)],
            categories=[(7, "person_face")],
        )
    )
    assert haar_baseline(gt, root, "person_face", cascade="face").tp == 1


def test_haar_predictions_reject_class_without_cascade(split):
    gt, root = split
    with pytest.raises(ValueError, match="no Haar cascade"):
        haar_predictions(gt, root, "face", cascade="logo")
