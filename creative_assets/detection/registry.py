"""Which detector backend and device a TrainSettings means.

`train.backend: auto` picks detectron2 when it is importable (the case study's engine) and builds
`train.architecture`, torchvision otherwise; an architecture that exists on one backend only (`tiny`,
`mobilenet_v3_large` on torchvision; `resnet18` on detectron2) always goes to that backend, and the reason
is recorded with the grid (`backend_choice`). `train.device: auto` picks CUDA when a GPU is visible.
This is the only module that imports a backend.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from creative_assets.detection.backend import DetectorBackend
from creative_assets.detection.runtime import BackendUnavailableError, resolve_device
from creative_assets.settings import TrainSettings

__all__ = [
    "BACKENDS",
    "BACKEND_ARCHITECTURES",
    "BackendChoice",
    "BackendUnavailableError",
    "backend_by_name",
    "backend_choice",
    "cpu_threads",
    "get_backend",
    "resolve_backend_name",
    "resolve_device",
]  # fmt: skip  (BackendUnavailableError and resolve_device are runtime's, re-exported for callers)

BACKENDS = ("detectron2", "torchvision")

# What each backend builds; the backends check their own lists, this table only routes.
BACKEND_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "detectron2": ("resnext101_32x8d", "resnet50", "resnet50_v2", "resnet18"),
    "torchvision": ("resnext101_32x8d", "resnet50_v2", "resnet50", "mobilenet_v3_large", "tiny"),
}


@dataclass(frozen=True)
class BackendChoice:
    """The backend a TrainSettings resolves to on this machine, and why (shown in the grid's metadata)."""

    name: str
    reason: str


def _detectron2_available() -> bool:
    return (
        importlib.util.find_spec("detectron2") is not None
        and importlib.util.find_spec("creative_assets.detection.detectron2_backend") is not None
    )


def _only_on(architecture: str) -> str | None:
    owners = [b for b in BACKENDS if architecture in BACKEND_ARCHITECTURES[b]]
    return owners[0] if len(owners) == 1 else None


def backend_choice(settings: TrainSettings) -> BackendChoice:
    """The backend `settings.backend` selects on this machine for `settings.architecture`, with the reason."""
    arch = settings.architecture
    only = _only_on(arch)
    if settings.backend == "auto":
        if only == "torchvision":
            return BackendChoice("torchvision", f"auto: {arch} exists on torchvision only")
        if only == "detectron2":
            if not _detectron2_available():
                raise BackendUnavailableError(
                    f"train.architecture {arch!r} exists on the detectron2 backend only, and detectron2 "
                    "cannot be imported here; install it (see README: detectron2) or choose another "
                    "train.architecture"
                )
            return BackendChoice("detectron2", f"auto: {arch} exists on detectron2 only")
        if _detectron2_available():
            return BackendChoice("detectron2", "auto: detectron2 is installed (the case study's engine)")
        return BackendChoice("torchvision", "auto: detectron2 is not installed")
    if settings.backend == "detectron2" and not _detectron2_available():
        raise BackendUnavailableError(
            "train.backend is 'detectron2' but detectron2 cannot be imported here; install it from its "
            "public source (see README) or set train.backend to 'torchvision' or 'auto'"
        )
    if arch not in BACKEND_ARCHITECTURES[settings.backend]:
        raise BackendUnavailableError(
            f"train.architecture {arch!r} does not exist on the {settings.backend} backend (train.backend); "
            f"it builds {', '.join(BACKEND_ARCHITECTURES[settings.backend])}"
        )
    return BackendChoice(settings.backend, f"train.backend: {settings.backend}")


def resolve_backend_name(settings: TrainSettings) -> str:
    """`detectron2` or `torchvision`: the backend `settings.backend` selects on this machine."""
    return backend_choice(settings).name


def cpu_threads(settings: TrainSettings) -> int | None:
    """torch intra-op threads for CPU work (`train.cpu_threads`; None = torch's default, also when unset)."""
    return settings.cpu_threads


def get_backend(settings: TrainSettings) -> DetectorBackend:
    """The detector backend for `settings` (see `backend_choice`)."""
    return backend_by_name(resolve_backend_name(settings), settings)


def backend_by_name(name: str, settings: TrainSettings) -> DetectorBackend:
    """The backend called `name` with the device and thread settings of `settings` (e.g. to load a
    checkpoint that backend wrote, whatever `settings.architecture` says now)."""
    if name not in BACKENDS:
        raise BackendUnavailableError(f"unknown detector backend {name!r}; known: {', '.join(BACKENDS)}")
    if name == "detectron2":
        if not _detectron2_available():
            raise BackendUnavailableError(
                "this model was trained with detectron2, which cannot be imported here; install it "
                "(see README: detectron2)"
            )
        from creative_assets.detection.detectron2_backend import Detectron2Backend

        return Detectron2Backend(device=settings.device)
    from creative_assets.detection.torchvision_backend import TorchvisionBackend

    return TorchvisionBackend(device=settings.device, cpu_threads=cpu_threads(settings))
