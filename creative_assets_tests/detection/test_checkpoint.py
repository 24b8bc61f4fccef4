"""One checkpoint layer for both backends: one error type, one reader of initial weights."""

from __future__ import annotations

import pytest
import torch

from creative_assets.detection.architectures import WeightsUnavailableError
from creative_assets.detection.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    checkpoint_name,
    read_checkpoint,
    read_initial_weights,
    write_checkpoint,
)


def test_snapshot_names_sort_by_iteration():
    assert checkpoint_name(300) == "model_0000300.pth"
    assert sorted([checkpoint_name(1000), checkpoint_name(300)]) == ["model_0000300.pth", "model_0001000.pth"]


def test_a_written_checkpoint_reads_back_with_its_meta_and_cpu_tensors(tmp_path):
    model = torch.nn.Linear(3, 2)
    write_checkpoint(model, tmp_path / "m.pth", {"format": "fmt/1", "classes": ["logo"]})
    ckpt = read_checkpoint(tmp_path / "m.pth", "fmt/1", "torchvision")
    assert checkpoint_meta(ckpt) == {"format": "fmt/1", "classes": ["logo"]}
    assert torch.equal(ckpt["state_dict"]["weight"], model.weight.detach())


def test_another_backends_checkpoint_is_a_checkpoint_error_naming_the_reader(tmp_path):
    write_checkpoint(torch.nn.Linear(1, 1), tmp_path / "m.pth", {"format": "theirs/1"})
    with pytest.raises(CheckpointError, match="not a detectron2-backend checkpoint"):
        read_checkpoint(tmp_path / "m.pth", "ours/1", "detectron2")


@pytest.mark.parametrize("form", ["checkpoint", "detectron2", "state_dict"])
def test_initial_weights_come_from_any_of_three_forms(tmp_path, form):
    state = torch.nn.Linear(2, 2).state_dict()
    payload = {
        "checkpoint": {"format": "x", "state_dict": state},
        "detectron2": {"model": state},
        "state_dict": state,
    }
    torch.save(payload[form], tmp_path / "w.pth")
    loaded = read_initial_weights(tmp_path / "w.pth")["state_dict"]
    assert set(loaded) == {"weight", "bias"} and torch.equal(loaded["weight"], state["weight"])


def test_a_file_without_weights_is_weights_unavailable_naming_the_setting(tmp_path):
    torch.save({"note": "no tensors"}, tmp_path / "w.pth")
    with pytest.raises(WeightsUnavailableError, match="holds no state_dict"):
        read_initial_weights(tmp_path / "w.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(WeightsUnavailableError, match="train.weights"):
        read_initial_weights(tmp_path / "junk.pth")
