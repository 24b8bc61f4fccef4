"""Backend routing: `auto` follows the architecture, then detectron2's presence, and says why."""

from __future__ import annotations

import importlib.util

import pytest

from creative_assets.detection.registry import (
    BackendUnavailableError,
    backend_by_name,
    backend_choice,
)
from creative_assets.settings import TrainSettings

HAS_DETECTRON2 = importlib.util.find_spec("detectron2") is not None


@pytest.mark.parametrize("architecture", ["tiny", "mobilenet_v3_large"])
def test_torchvision_only_architectures_go_to_torchvision_whatever_is_installed(architecture):
    choice = backend_choice(TrainSettings(backend="auto", architecture=architecture))
    assert (choice.name, choice.reason) == ("torchvision", f"auto: {architecture} exists on torchvision only")


def test_resnet18_is_detectron2s_and_needs_it():
    settings = TrainSettings(backend="auto", architecture="resnet18")
    if HAS_DETECTRON2:
        assert backend_choice(settings).name == "detectron2"
        assert backend_choice(settings).reason == "auto: resnet18 exists on detectron2 only"
    else:
        with pytest.raises(BackendUnavailableError, match="resnet18.*detectron2 backend only"):
            backend_choice(settings)


def test_architectures_on_both_backends_prefer_detectron2_when_installed():
    choice = backend_choice(TrainSettings(backend="auto", architecture="resnext101_32x8d"))
    if HAS_DETECTRON2:
        assert (choice.name, choice.reason) == (
            "detectron2",
            "auto: detectron2 is installed (the case study's engine)",
        )
    else:
        assert (choice.name, choice.reason) == ("torchvision", "auto: detectron2 is not installed")


def test_an_architecture_the_named_backend_cannot_build_is_an_error_naming_the_settings():
    with pytest.raises(BackendUnavailableError, match=r"train.architecture 'resnet18'.*torchvision backend"):
        backend_choice(TrainSettings(backend="torchvision", architecture="resnet18"))


def test_a_backend_loads_its_checkpoints_whatever_the_architecture_setting_says_now():
    assert (
        backend_by_name("torchvision", TrainSettings(architecture="resnext101_32x8d")).name == "torchvision"
    )
    if HAS_DETECTRON2:
        assert backend_by_name("detectron2", TrainSettings(architecture="tiny")).name == "detectron2"
    else:
        with pytest.raises(BackendUnavailableError, match="trained with detectron2"):
            backend_by_name("detectron2", TrainSettings())


def test_an_unknown_backend_name_is_an_error():
    with pytest.raises(BackendUnavailableError, match="unknown detector backend 'mmdet'"):
        backend_by_name("mmdet", TrainSettings())
