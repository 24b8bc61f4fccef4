"""Training: detectron2's `DefaultTrainer` with COCO evaluation, absolute-iteration LR steps, and a hook that
times the steps, reports progress and writes this project's checkpoints at the snapshot iterations."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from detectron2.config import CfgNode
from detectron2.data import build_detection_train_loader
from detectron2.engine import DefaultTrainer, HookBase, hooks
from detectron2.evaluation import COCOEvaluator
from detectron2.modeling import build_model
from detectron2.utils.events import CommonMetricPrinter, JSONWriter

from creative_assets.detection.backend import ProgressFn
from creative_assets.detection.checkpoint import checkpoint_name, write_checkpoint
from creative_assets.detection.detectron2_backend.data import AugmentingMapper
from creative_assets.detection.solver import warmup_multistep_factor
from creative_assets.settings import TrainSettings


def fast_coco_eval_available() -> bool:
    """True when detectron2's compiled `_C` extension (its fast COCOeval) is importable."""
    try:
        return importlib.util.find_spec("detectron2._C") is not None
    except (ImportError, ValueError):
        return False


class SnapshotHook(HookBase):
    """Times the steps, reports progress and saves a checkpoint after each snapshot iteration."""

    def __init__(
        self,
        snapshots: Sequence[int],
        out_dir: Path,
        meta: dict[str, Any],
        batch_size_per_image: int,
        progress: ProgressFn | None,
    ) -> None:
        self.snapshots = set(snapshots)
        self.out_dir = out_dir
        self.meta = meta
        self.batch_size_per_image = batch_size_per_image
        self.progress = progress
        self.checkpoints: dict[int, Path] = {}
        self.seconds: dict[int, float] = {}
        self.losses: list[float] = []
        self.elapsed = 0.0
        self._started = 0.0

    def before_step(self) -> None:
        self._started = time.perf_counter()

    def after_step(self) -> None:
        self.elapsed += time.perf_counter() - self._started
        trainer = self.trainer
        done = trainer.iter + 1
        latest = trainer.storage.latest()
        loss = float(latest["total_loss"][0])
        self.losses.append(loss)
        if self.progress is not None:
            info = {"loss": loss, "lr": float(latest["lr"][0])}
            info.update({k: float(v[0]) for k, v in latest.items() if k.startswith("loss_")})
            self.progress(done, trainer.max_iter, info)
        if done in self.snapshots:
            path = self.out_dir / checkpoint_name(done)
            trial = {"max_iter": done, "batch_size_per_image": self.batch_size_per_image}
            write_checkpoint(trainer.model, path, {**self.meta, "params": trial, "iteration": done})
            self.checkpoints[done] = path
            self.seconds[done] = self.elapsed


class CreativeAssetsTrainer(DefaultTrainer):
    """`DefaultTrainer` with COCO evaluation, absolute-iteration LR steps, quiet model building and, when made by
    `trainer_for`, this project's training augmentation."""

    # DefaultTrainer builds its loader in __init__ from a classmethod, so the settings ride on the class
    train_settings: TrainSettings | None = None

    @classmethod
    def build_train_loader(cls, cfg: CfgNode) -> Any:
        """detectron2's loader; the mapper is `AugmentingMapper` (the augmentation both backends share)."""
        if cls.train_settings is None:
            return super().build_train_loader(cfg)
        return build_detection_train_loader(cfg, mapper=AugmentingMapper(cls.train_settings))

    @classmethod
    def build_model(cls, cfg: CfgNode) -> torch.nn.Module:
        """The model of `cfg` (without logging its whole architecture, as DefaultTrainer does)."""
        return build_model(cfg)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer) -> Any:
        """WarmupMultiStepLR whose warmup and steps never depend on MAX_ITER (see module docstring)."""
        warmup_iters, warmup_factor = cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR
        steps, gamma = list(cfg.SOLVER.STEPS), cfg.SOLVER.GAMMA
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda it: warmup_multistep_factor(it, warmup_iters, warmup_factor, steps, gamma)
        )

    @classmethod
    def build_evaluator(
        cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None
    ) -> COCOEvaluator:
        """COCO box AP; pycocotools' own COCOeval where detectron2's compiled one is missing."""
        return COCOEvaluator(
            dataset_name,
            tasks=("bbox",),
            distributed=False,
            output_dir=output_folder,
            use_fast_impl=fast_coco_eval_available(),
        )

    def build_writers(self) -> list[Any]:
        """Console and metrics.json; no TensorBoard event files."""
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(str(Path(self.cfg.OUTPUT_DIR) / "metrics.json")),
        ]

    def build_hooks(self) -> list[HookBase]:
        """DefaultTrainer's hooks less its PeriodicCheckpointer (snapshots are taken by `SnapshotHook`)."""
        return [h for h in super().build_hooks() if not isinstance(h, hooks.PeriodicCheckpointer)]


def trainer_for(settings: TrainSettings) -> type[CreativeAssetsTrainer]:
    """A `CreativeAssetsTrainer` class whose training loader augments as `settings` ask."""
    return type("CreativeAssetsTrainer", (CreativeAssetsTrainer,), {"train_settings": settings})
