"""The verdict against "always absent" on the test split, from a fixed detector on real COCO files and PNGs."""

from __future__ import annotations

from pathlib import Path

from creative_assets.detection.backend import CocoSplit
from creative_assets.detection.baseline import verdict_on_test_split
from creative_assets_tests.support.coco_builders import preds, write_coco
from creative_assets_tests.support.fixed_detector import FixedDetector, write_id_images

# 8 test images, the logo on 2 of them: "always absent" is right on 6 of 8.
IDS = list(range(1, 9))
LOGO_ON = (1, 2)


def held_out_split(tmp_path: Path) -> CocoSplit:
    images = write_id_images(tmp_path / "test", IDS)
    boxes = [(i, 1, [10.0, 10.0, 20.0, 20.0]) for i in LOGO_ON]
    path = write_coco(tmp_path / "test.json", images, boxes, [(1, "logo")], size=(64, 64))
    return CocoSplit(json_path=path, image_root=tmp_path)


def box(score: float):
    return preds(([10, 10, 30, 30], score, 0))


def test_a_model_that_never_detects_does_not_beat_always_absent(tmp_path: Path) -> None:
    verdict = verdict_on_test_split(FixedDetector(["logo"], {}), held_out_split(tmp_path), 0.4)
    assert (verdict.test_accuracy, verdict.always_absent_accuracy, verdict.test_images) == (6 / 8, 6 / 8, 8)
    assert not verdict.beats
    assert "does NOT beat the 'always absent' baseline" in verdict.words()
    assert "0.750 vs 0.750" in verdict.words()


def test_a_model_that_finds_one_logo_and_nothing_else_beats_it(tmp_path: Path) -> None:
    verdict = verdict_on_test_split(FixedDetector(["logo"], {1: box(0.9)}), held_out_split(tmp_path), 0.4)
    assert verdict.test_accuracy == 7 / 8 and verdict.beats
    assert verdict.words().startswith("beats the 'always absent' baseline")


def test_scores_under_the_confidence_do_not_count(tmp_path: Path) -> None:
    detector = FixedDetector(["logo"], {1: box(0.3), 2: box(0.3), 5: box(0.9)})
    verdict = verdict_on_test_split(detector, held_out_split(tmp_path), 0.4)
    assert verdict.test_accuracy == 5 / 8 and not verdict.beats  # one false positive, both logos missed
