"""Optimizer and learning-rate schedule with detectron2's semantics (SOLVER.* config keys).

- SGD with SOLVER.MOMENTUM and SOLVER.WEIGHT_DECAY; normalisation layers get no weight decay
  (detectron2's WEIGHT_DECAY_NORM = 0.0 default).
- BASE_LR from `TrainSettings.scaled_base_lr()`: the linear scaling rule from the reference config.
- WarmupMultiStepLR: the LR used for iteration `t` (0-based) is

      BASE_LR × warmup(t) × GAMMA ** (number of STEPS <= t)
      warmup(t) = WARMUP_FACTOR × (1 − t / WARMUP_ITERS) + t / WARMUP_ITERS   for t < WARMUP_ITERS, else 1

Warmup and steps are absolute iteration numbers, so the LR of iteration t never depends on MAX_ITER: the
first k iterations of a long run are the same as a k-iteration run (what grid prefix sharing relies on).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

import torch
from torch import nn

from creative_assets.settings import TrainSettings

_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm2d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def warmup_multistep_factor(
    iteration: int, warmup_iters: int, warmup_factor: float, steps: Sequence[int], gamma: float
) -> float:
    """LR multiplier of iteration `iteration` (0-based) under linear warmup and multi-step decay."""
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    warmup = 1.0
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        warmup = warmup_factor * (1.0 - alpha) + alpha
    return warmup * gamma ** bisect_right(sorted(steps), iteration)


def lr_at(settings: TrainSettings, iteration: int) -> float:
    """The learning rate iteration `iteration` (0-based) trains with."""
    factor = warmup_multistep_factor(
        iteration, settings.warmup_iters, settings.warmup_factor, settings.steps, settings.gamma
    )
    return settings.scaled_base_lr() * factor


def build_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.SGD:
    """SGD over the trainable parameters; normalisation weights and biases are not decayed."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if isinstance(module, _NORM_TYPES) else decay).append(param)
    groups = [{"params": decay, "weight_decay": settings.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=settings.scaled_base_lr(), momentum=settings.momentum)


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, settings: TrainSettings
) -> torch.optim.lr_scheduler.LambdaLR:
    """WarmupMultiStepLR as a LambdaLR: call `.step()` once after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda it: warmup_multistep_factor(
            it, settings.warmup_iters, settings.warmup_factor, settings.steps, settings.gamma
        ),
    )
