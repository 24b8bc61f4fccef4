"""Whether a chosen model beats the "always absent" baseline on the held-out test split.

"Always absent" says every image lacks the object; its accuracy is the share of (image, class) cells where the
class is absent. A model that does not beat it on images it never saw in training or selection predicts
presence no better than the base rate does: its detections look like data but carry no signal, and an MMM fed
its features fits noise. The verdict is taken once, when the model is chosen, at the confidence the grid picked
it at (its best valid accuracy), on the test split (valid chose the model, so valid flatters it); the
accuracy is pooled over the object's classes, the grid's mean accuracy, so the two are comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from creative_assets.detection.backend import CocoSplit, Detector
from creative_assets.detection.evaluation import (
    GroundTruth,
    always_absent_accuracy,
    load_ground_truth,
    max_scores,
    presence_metrics,
)
from creative_assets.detection.grid import remap_predictions
from creative_assets.detection.split_inference import predict_split


@dataclass(frozen=True)
class BaselineVerdict:
    """A model's test accuracy at one confidence next to "always absent" on the same images."""

    confidence: float
    test_accuracy: float
    always_absent_accuracy: float
    test_images: int

    @property
    def beats(self) -> bool:
        """Strictly more accurate than "always absent"; an empty test split (NaN) does not beat it."""
        if math.isnan(self.test_accuracy) or math.isnan(self.always_absent_accuracy):
            return False
        return self.test_accuracy > self.always_absent_accuracy

    def words(self) -> str:
        """The verdict as a sentence for metadata and the demo summary."""
        figures = (
            f"test accuracy {self.test_accuracy:.3f} vs {self.always_absent_accuracy:.3f} for 'always absent' "
            f"at confidence {self.confidence:.2f} on {self.test_images} held-out test images"
        )
        if self.beats:
            return f"beats the 'always absent' baseline ({figures})"
        return (
            f"does NOT beat the 'always absent' baseline ({figures}): its detections are no better than "
            "assuming the object is never there; label more images or widen the grid before using them "
            "(its detections carry model_beats_baseline = false)"
        )


def baseline_verdict(gt: GroundTruth, preds: dict, confidence: float) -> BaselineVerdict:
    """The verdict from predictions already in `gt`'s class order (keyed by COCO image id)."""
    scores = max_scores(gt, preds)
    metrics = presence_metrics(gt.presence, scores, confidence)
    return BaselineVerdict(
        confidence=float(confidence),
        test_accuracy=float(metrics.accuracy),
        always_absent_accuracy=always_absent_accuracy(gt.presence),
        test_images=gt.n_images,
    )


def verdict_on_test_split(
    detector: Detector, test: CocoSplit, confidence: float, images_per_forward: int = 8
) -> BaselineVerdict:
    """Run `detector` on the test split and compare it with "always absent" at `confidence`."""
    gt = load_ground_truth(test.json_path)
    preds = remap_predictions(predict_split(detector, test, images_per_forward, 0.0), detector.classes, gt)
    return baseline_verdict(gt, preds, confidence)
