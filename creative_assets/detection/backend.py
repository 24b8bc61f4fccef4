"""The detector backend interface: train, predict on batches, save and load.

Two real implementations: `torchvision_backend` and `detectron2_backend`. Both use the same
hyper-parameter names (detectron2's) so a grid means the same thing on either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from creative_assets.detection.runtime import resolve_device
from creative_assets.settings import TrainSettings

if TYPE_CHECKING:  # torch is imported where a model runs, not when the code location loads
    import torch

# progress(iteration, max_iter, info) — info holds e.g. {"loss": float, "lr": float}
ProgressFn = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True)
class CocoSplit:
    """One COCO split on disk: `file_name`s in the json are relative to `image_root`."""

    json_path: Path
    image_root: Path


@dataclass(frozen=True)
class TrialParams:
    """The grid's two axes; everything else comes from TrainSettings."""

    max_iter: int
    batch_size_per_image: int

    @property
    def key(self) -> str:
        """Stable name of the trial, e.g. `it300_roi512`."""
        return f"it{self.max_iter}_roi{self.batch_size_per_image}"


@dataclass
class Predictions:
    """Detections for one image: boxes in pixels of the input image (x_min, y_min, x_max, y_max)."""

    boxes: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    labels: np.ndarray  # (N,) int64, index into Detector.classes

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def from_tensors(
        cls, boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, score_floor: float = 0.0
    ) -> Predictions:
        """One image's detections from a model's output tensors (any device, any float dtype), keeping
        scores ≥ `score_floor`; `labels` must already index `Detector.classes`."""
        keep = scores >= score_floor
        return cls(
            boxes=boxes[keep].float().cpu().numpy().astype(np.float32).reshape(-1, 4),
            scores=scores[keep].float().cpu().numpy().astype(np.float32),
            labels=labels[keep].cpu().numpy().astype(np.int64),
        )


@dataclass
class TrainResult:
    """Checkpoints written by one training run, keyed by the iteration they were taken at."""

    checkpoints: dict[int, Path]
    seconds: dict[int, float]  # wall seconds of training up to that iteration
    info: dict[str, Any] = field(default_factory=dict)


class Detector(Protocol):
    """A loaded model ready for inference."""

    classes: list[str]
    backend: str
    device: str

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        """Detect on a batch of BGR uint8 images (H, W, 3) of any sizes; one Predictions per image."""
        ...


@dataclass(frozen=True)
class TrainJob:
    """One training run as a backend's `fit` receives it, checked and with its device resolved."""

    split: CocoSplit
    classes: list[str]
    params: TrialParams
    settings: TrainSettings
    out_dir: Path
    snapshots: tuple[int, ...]  # sorted iterations to checkpoint at, MAX_ITER last
    progress: ProgressFn | None
    device: str  # "cpu" or "cuda"


class DetectorBackend(Protocol):
    """Trains and loads detectors. A backend subclasses this to share `train` and implements `fit`."""

    name: str
    # "auto"/None: `settings.device` decides at training time
    device: str | None
    # True when a snapshot at iteration k of a longer run equals a k-iteration run with the same seed (the LR
    # schedule and the data stream never depend on MAX_ITER), so the grid may share one run per ROI batch size
    prefix_stable: bool

    def train(
        self,
        train: CocoSplit,
        classes: list[str],
        params: TrialParams,
        settings: TrainSettings,
        out_dir: Path,
        snapshot_iters: Sequence[int] = (),
        progress: ProgressFn | None = None,
    ) -> TrainResult:
        """Train a detector for `classes` on `train`, saving `model_<iter>.pth` at each of `snapshot_iters`
        below MAX_ITER and at MAX_ITER. Runs on the backend's device, or on `settings.device` when the
        backend's is `auto`/None."""
        if not classes:
            raise ValueError("at least one class is needed to train a detector")
        max_iter = params.max_iter
        snapshots = tuple(sorted({int(k) for k in snapshot_iters if 0 < int(k) < max_iter} | {max_iter}))
        device = resolve_device(self.device if self.device not in (None, "auto") else settings.device)
        job = TrainJob(train, list(classes), params, settings, Path(out_dir), snapshots, progress, device)
        return self.fit(job)

    def fit(self, job: TrainJob) -> TrainResult:
        """The backend's own training loop for one checked job."""
        ...

    def load(self, checkpoint: Path, device: str | None = None) -> Detector:
        """Load a checkpoint this backend saved (`torch.load(weights_only=True)`)."""
        ...


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A uint8 (H, W, 3) BGR view of a grey, BGR or BGRA image; ValueError for anything else."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"images must be (H, W, 3) BGR, got shape {image.shape}")
    return image
