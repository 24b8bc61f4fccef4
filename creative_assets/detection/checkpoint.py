"""Checkpoints both backends write and read: one error type, one file layout, one reader of initial weights.

A checkpoint is a plain dict saved with `torch.save` and loaded with `torch.load(weights_only=True)`:
`format` (which backend wrote it), `backend`, `architecture`, `classes`, `train_settings`, `weights`,
`device`, `params` (max_iter, batch_size_per_image), `iteration`, the backend's own extras (detectron2: its
config as YAML under `cfg`) and `state_dict` (CPU tensors). Snapshots are `model_<iteration:07d>.pth`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from creative_assets.atomic import atomic_path
from creative_assets.detection.architectures import WeightsUnavailableError
from creative_assets.settings import TrainSettings


class CheckpointError(ValueError):
    """A file that is not a checkpoint of the backend asked to load it."""


def checkpoint_name(iteration: int) -> str:
    """File name of the snapshot taken after `iteration` iterations."""
    return f"model_{iteration:07d}.pth"


def state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors copied to the CPU (DistributedDataParallel unwrapped)."""
    model = getattr(model, "module", model)
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def write_checkpoint(model: torch.nn.Module, path: Path, meta: dict[str, Any]) -> None:
    """Save `meta` plus the model's CPU state_dict atomically at `path`."""
    with atomic_path(Path(path)) as tmp:
        torch.save({**meta, "state_dict": state_dict_cpu(model)}, tmp)


def read_checkpoint(path: Path, fmt: str, backend: str, device: str = "cpu") -> dict[str, Any]:
    """A checkpoint written in format `fmt`; CheckpointError naming `backend` for anything else."""
    ckpt = torch.load(Path(path), map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise CheckpointError(f"{path} is not a {backend}-backend checkpoint of this project")
    return ckpt


def training_meta(
    fmt: str, backend: str, settings: TrainSettings, classes: list[str], weights: str, device: str
) -> dict[str, Any]:
    """The fields every checkpoint of a training run carries (the layout in the module docstring)."""
    return {
        "format": fmt,
        "backend": backend,
        "architecture": settings.architecture,
        "classes": list(classes),
        "train_settings": settings.model_dump(mode="json"),
        "weights": weights,
        "device": device,
    }


def checkpoint_meta(ckpt: dict[str, Any]) -> dict[str, Any]:
    """Everything of a checkpoint but its tensors."""
    return {k: v for k, v in ckpt.items() if k != "state_dict"}


def read_initial_weights(path: Path) -> dict[str, Any]:
    """A local `train.weights` file: `{"state_dict": …}` plus whatever else it holds.

    Accepts a checkpoint of this project (either backend), a detectron2-style `{"model": state_dict}` file or
    a plain state_dict; WeightsUnavailableError otherwise.
    """
    try:
        loaded = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsUnavailableError(
            f"cannot read train.weights checkpoint {path}: {err}. Set train.weights to 'none' or to a "
            "checkpoint saved by this project (or a plain state_dict)"
        ) from err
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        return loaded
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        return {"state_dict": loaded["model"]}
    if isinstance(loaded, dict) and loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return {"state_dict": loaded}
    raise WeightsUnavailableError(f"train.weights checkpoint {path} holds no state_dict")
