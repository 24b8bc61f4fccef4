"""Which detector backend and device a TrainSettings means.

`train.backend: auto` picks detectron2 when it is importable (the case study's engine) and has a model-zoo
config for `train.architecture`, torchvision otherwise (e.g. `tiny` and `mobilenet_v3_large` are
torchvision-only); `train.device: auto` picks CUDA when a GPU is visible.
"""

from __future__ import annotations

import importlib.util

import torch

from creative_assets.detection.backend import DetectorBackend
from creative_assets.settings import TrainSettings

BACKENDS = ("detectron2", "torchvision")


class BackendUnavailableError(RuntimeError):
    """The backend or device named in the settings cannot be used here."""


def _detectron2_available() -> bool:
    return (
        importlib.util.find_spec("detectron2") is not None
        and importlib.util.find_spec("creative_assets.detection.detectron2_backend") is not None
    )


def resolve_backend_name(settings: TrainSettings) -> str:
    """`detectron2` or `torchvision`: the backend `settings.backend` selects on this machine."""
    if settings.backend == "auto":
        if _detectron2_available():
            from creative_assets.detection.detectron2_backend import ARCHITECTURE_CONFIGS

            if settings.architecture in ARCHITECTURE_CONFIGS:
                return "detectron2"
        return "torchvision"
    if settings.backend == "detectron2" and not _detectron2_available():
        raise BackendUnavailableError(
            "train.backend is 'detectron2' but detectron2 cannot be imported here; install it from its "
            "public source (see README) or set train.backend to 'torchvision' or 'auto'"
        )
    return settings.backend


def resolve_device(device: str | None) -> str:
    """`cuda` or `cpu` for a device setting (`auto`/None → CUDA when available)."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "train.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'"
        )
    if device not in ("cpu", "cuda"):
        raise BackendUnavailableError(f"train.device must be auto, cpu or cuda, got {device!r}")
    return device


def cpu_threads(settings: TrainSettings) -> int | None:
    """torch intra-op threads for CPU work (`train.cpu_threads`; None = torch's default, also when unset)."""
    return settings.cpu_threads


def get_backend(settings: TrainSettings) -> DetectorBackend:
    """The detector backend for `settings` (see `resolve_backend_name`)."""
    name = resolve_backend_name(settings)
    if name == "detectron2":
        from creative_assets.detection.detectron2_backend import Detectron2Backend

        return Detectron2Backend(device=settings.device)
    from creative_assets.detection.torchvision_backend import TorchvisionBackend

    return TorchvisionBackend(device=settings.device, cpu_threads=cpu_threads(settings))
