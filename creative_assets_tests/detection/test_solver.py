"""Solver: linear LR scaling, detectron2's WarmupMultiStepLR and SGD parameter groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from creative_assets.detection.solver import (
    build_lr_scheduler,
    build_optimizer,
    lr_at,
    warmup_multistep_factor,
)
from creative_assets.settings import TrainSettings


def test_linear_scaling_rule_gives_0_0025_for_two_images():
    settings = TrainSettings(ims_per_batch=2, reference_lr=0.02, reference_ims_per_batch=16)
    assert settings.scaled_base_lr() == pytest.approx(0.0025)


def test_explicit_base_lr_overrides_the_scaling_rule():
    assert TrainSettings(ims_per_batch=2, base_lr=0.00125).scaled_base_lr() == 0.00125


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [(0, 0.001), (250, 0.001 * 0.75 + 0.25), (500, 0.5005), (999, 0.001 * 0.001 + 0.999), (1000, 1.0)],
)
def test_warmup_rises_linearly_from_the_warmup_factor(iteration, expected):
    assert warmup_multistep_factor(iteration, 1000, 0.001, [], 0.1) == pytest.approx(expected)


@pytest.mark.parametrize(("iteration", "expected"), [(9, 1.0), (10, 0.1), (19, 0.1), (20, 0.01), (500, 0.01)])
def test_each_step_multiplies_by_gamma(iteration, expected):
    assert warmup_multistep_factor(iteration, 0, 0.001, [10, 20], 0.1) == pytest.approx(expected)


def test_step_inside_warmup_multiplies_the_warmup_value():
    # iteration 5 of a 10-iteration warmup from 0.1 is 0.55; one step at 3 has passed
    assert warmup_multistep_factor(5, 10, 0.1, [3], 0.5) == pytest.approx(0.55 * 0.5)


def test_lr_at_uses_the_scaled_base_lr():
    settings = TrainSettings(ims_per_batch=2, warmup_iters=100, warmup_factor=0.01, steps=[150], gamma=0.1)
    assert lr_at(settings, 0) == pytest.approx(0.0025 * 0.01)
    assert lr_at(settings, 100) == pytest.approx(0.0025)
    assert lr_at(settings, 150) == pytest.approx(0.00025)


def test_scheduler_gives_the_optimizer_the_lr_of_each_iteration():
    settings = TrainSettings(base_lr=0.1, warmup_iters=4, warmup_factor=0.25, steps=[6], gamma=0.5)
    model = nn.Linear(2, 1)
    optimizer = build_optimizer(model, settings)
    scheduler = build_lr_scheduler(optimizer, settings)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([lr_at(settings, i) for i in range(8)])
    assert seen == pytest.approx([0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.05, 0.05])


def test_norm_parameters_are_not_weight_decayed():
    settings = TrainSettings(weight_decay=1e-4, momentum=0.9)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1))
    optimizer = build_optimizer(model, settings)
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in optimizer.param_groups}
    assert by_decay[0.0] == {id(model[1].weight), id(model[1].bias)}
    assert id(model[0].weight) in by_decay[1e-4] and id(model[2].bias) in by_decay[1e-4]
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)


def test_frozen_parameters_are_left_out_of_the_optimizer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].weight.requires_grad_(False)
    optimizer = build_optimizer(model, TrainSettings())
    params = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert id(model[0].weight) not in params and id(model[0].bias) in params


def test_negative_iteration_is_refused():
    with pytest.raises(ValueError):
        warmup_multistep_factor(-1, 10, 0.1, [], 0.1)


def test_optimizer_is_sgd():
    assert isinstance(build_optimizer(nn.Linear(1, 1), TrainSettings()), torch.optim.SGD)
