"""The torchvision detector backend: Faster R-CNN + FPN trained iteration by iteration, detectron2-style.

Training is deterministic for a seed on the CPU (same seed → same losses and weights): model init,
RPN/RoI sampling and the data stream are all seeded, and nothing depends on MAX_ITER, so a snapshot at
iteration k of a longer run equals a k-iteration run (`prefix_stable`, used by the grid).
On CUDA, AMP (autocast fp16 + GradScaler) is used when `train.amp` is set.

A checkpoint is a plain dict saved with `torch.save` and read back with `torch.load(weights_only=True)`:
format tag, backend, architecture, classes, the train settings as a dict, the trial params, the iteration
and the model's state_dict.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from creative_assets.detection.architectures import PRETRAINED_CHOICES, build_model, load_initial_weights
from creative_assets.detection.backend import DetectorBackend, Predictions, TrainJob, TrainResult, as_bgr
from creative_assets.detection.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    checkpoint_name,
    read_checkpoint,
    read_initial_weights,
    training_meta,
    write_checkpoint,
)
from creative_assets.detection.coco_data import (
    CocoDetectionDataset,
    InfiniteTrainingSampler,
    collate_samples,
)
from creative_assets.detection.runtime import (
    autocast_on_cuda,
    resolve_device,
    seed_everything,
    torch_threads,
    training_loader_workers,
)
from creative_assets.detection.solver import build_lr_scheduler, build_optimizer
from creative_assets.settings import TrainSettings

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "TorchvisionBackend", "TorchvisionDetector"]

CHECKPOINT_FORMAT = "creative_assets/torchvision-faster-rcnn/1"


class TorchvisionDetector:
    """A trained torchvision Faster R-CNN in eval mode; `predict` takes BGR uint8 images of any size."""

    backend = "torchvision"

    def __init__(
        self,
        model: torch.nn.Module,
        classes: list[str],
        device: str,
        amp: bool,
        meta: dict[str, Any],
        cpu_threads: int | None = None,
    ) -> None:
        self.model = model.eval()
        self.parameter_count = sum(p.numel() for p in model.parameters())
        self.cpu_threads = cpu_threads if device == "cpu" else None
        self.classes = list(classes)
        self.device = device
        self.amp = amp and device == "cuda"
        self.meta = meta
        if device == "cuda":
            # cuDNN's fp16 convolutions are fastest with NHWC weights and activations
            self.model.to(memory_format=torch.channels_last)
            # creatives of one campaign share a few sizes, so autotuned convolutions are reused
            torch.backends.cudnn.benchmark = True

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        """One forward pass over the batch; boxes in input-image pixels, scores ≥ `score_floor`."""
        if len(images) == 0:
            return []
        tensors = []
        for image in images:
            # BGR uint8 goes to the device as it is; the channel flip and the float conversion run there
            # (on an H200 the host-side flip copy took a quarter of the detection time).
            bgr = torch.from_numpy(np.ascontiguousarray(as_bgr(image))).to(self.device, non_blocking=True)
            tensors.append(bgr.permute(2, 0, 1).flip(0).float().div_(255.0))
        with torch_threads(self.cpu_threads), torch.inference_mode(), autocast_on_cuda(self.device, self.amp):
            outputs = self.model(tensors)
        # torchvision's label 0 is the background class
        return [
            Predictions.from_tensors(o["boxes"], o["scores"], o["labels"] - 1, score_floor) for o in outputs
        ]

    def save(self, path: Path) -> None:
        """Write this detector as a checkpoint `TorchvisionBackend.load` reads back (atomically)."""
        write_checkpoint(self.model, Path(path), self.meta)


class TorchvisionBackend(DetectorBackend):
    """Trains and loads torchvision Faster R-CNN detectors (see module docstring)."""

    name = "torchvision"
    # a snapshot at iteration k of a longer run equals a k-iteration run with the same seed
    prefix_stable = True

    def __init__(
        self, device: str | None = "auto", loader_workers: int | None = None, cpu_threads: int | None = None
    ) -> None:
        self.device = device
        self.loader_workers = loader_workers
        self.cpu_threads = cpu_threads

    def fit(self, job: TrainJob) -> TrainResult:
        """Train to `params.max_iter` with this backend's CPU thread cap (see `DetectorBackend.train`)."""
        with torch_threads(self.cpu_threads if job.device == "cpu" else None):
            return self._train(job)

    def _train(self, job: TrainJob) -> TrainResult:
        train, classes, params, settings = job.split, job.classes, job.params, job.settings
        device, out_dir, progress = job.device, job.out_dir, job.progress
        snaps, max_iter = job.snapshots, params.max_iter

        seed_everything(settings.seed)
        if settings.weights in PRETRAINED_CHOICES:
            model, note = build_model(
                settings.architecture, len(classes), settings, params.batch_size_per_image, settings.weights
            )
        else:
            model, _ = build_model(settings.architecture, len(classes), settings, params.batch_size_per_image)
            initial = read_initial_weights(Path(settings.weights))["state_dict"]
            counts = load_initial_weights(model, initial)
            note = f"{settings.weights} ({counts['loaded']} tensors loaded, {counts['skipped']} initialised)"
        model.to(device).train()

        dataset = CocoDetectionDataset(
            train, classes, settings.min_size_train, settings.max_size_train, augmentations=settings.augment
        )
        loader = DataLoader(
            dataset,
            batch_size=settings.ims_per_batch,
            sampler=InfiniteTrainingSampler(len(dataset), settings.seed),
            collate_fn=collate_samples,
            num_workers=training_loader_workers(device, self.loader_workers),
            pin_memory=device == "cuda",
        )
        optimizer = build_optimizer(model, settings)
        scheduler = build_lr_scheduler(optimizer, settings)
        use_amp = settings.amp and device == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

        meta = training_meta(CHECKPOINT_FORMAT, self.name, settings, classes, note, device)
        checkpoints: dict[int, Path] = {}
        seconds: dict[int, float] = {}
        losses: list[float] = []
        elapsed = 0.0
        batches = iter(loader)
        for iteration in range(max_iter):
            started = time.perf_counter()
            batch = next(batches)
            images = [image.to(device, non_blocking=True) for image, _ in batch]
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for _, t in batch]
            with autocast_on_cuda(device, use_amp):
                loss_parts = model(images, targets)
                loss = sum(loss_parts.values())
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at iteration {iteration}; lower train.base_lr or "
                    "raise train.warmup_iters"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            loss_value = float(loss.detach())
            losses.append(loss_value)
            elapsed += time.perf_counter() - started
            done = iteration + 1
            if progress is not None:
                info = {"loss": loss_value, "lr": lr, **{k: float(v.detach()) for k, v in loss_parts.items()}}
                progress(done, max_iter, info)
            if done in snaps:
                path = out_dir / checkpoint_name(done)
                trial = {"max_iter": done, "batch_size_per_image": params.batch_size_per_image}
                write_checkpoint(model, path, {**meta, "params": trial, "iteration": done})
                checkpoints[done] = path
                seconds[done] = elapsed
        return TrainResult(
            checkpoints=checkpoints,
            seconds=seconds,
            info={"losses": losses, "device": device, "weights": note, "skipped_annotations": dataset.stats},
        )

    def load(self, checkpoint: Path, device: str | None = None) -> TorchvisionDetector:
        """Load a checkpoint written by `train` onto `device` (default: the backend's device)."""
        device = resolve_device(device if device is not None else self.device)
        ckpt = read_checkpoint(Path(checkpoint), CHECKPOINT_FORMAT, self.name, device)
        known = set(TrainSettings.model_fields)
        settings = TrainSettings.model_validate(
            {k: v for k, v in ckpt["train_settings"].items() if k in known}
        )
        classes = list(ckpt["classes"])
        model, _ = build_model(
            ckpt["architecture"], len(classes), settings, int(ckpt["params"]["batch_size_per_image"])
        )
        model.load_state_dict(ckpt["state_dict"])
        model.to(device)
        return TorchvisionDetector(
            model, classes, device, settings.amp, checkpoint_meta(ckpt), self.cpu_threads
        )
