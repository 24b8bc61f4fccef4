"""Checkpoint retention: losing trials lose their weights, never their results, and nothing is retrained."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from creative_assets.detection.grid import CHECKPOINT_FILE, RESULT_FILE, choose_best_trial
from creative_assets.detection.grid_executors import run_grid
from creative_assets.detection.retention import folder_bytes, forget_pruned_winner, prune_losing_checkpoints
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.settings import build_settings
from creative_assets_tests.support.coco_builders import write_toy_coco

CLASSES = ["logo", "product"]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """A smoke grid (4 trials) whose losers were pruned, with the folder size before and after."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("root")
    split = write_toy_coco(root / "splits")
    settings = build_settings(root, "smoke", {"train": {"device": "cpu"}})
    out = root / "models" / "acme" / "logo"
    first = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out)
    winner = str(choose_best_trial(first.trials)["trial"])
    before = folder_bytes(out)
    sizes = {p.parent.name: p.stat().st_size for p in (out / "trials").glob(f"*/{CHECKPOINT_FILE}")}
    report = prune_losing_checkpoints(out / "trials", winner)
    return root, split, settings, out, first, winner, before, sizes, report


def test_only_the_winners_checkpoint_is_left(pruned):
    *_, out, first, winner, _, _, _ = pruned
    assert sorted(p.parent.name for p in (out / "trials").glob(f"*/{CHECKPOINT_FILE}")) == [winner]
    assert sorted(p.parent.name for p in (out / "trials").glob(f"*/{RESULT_FILE}")) == sorted(
        first.trials["trial"]
    )


def test_the_report_counts_the_removed_files_and_bytes(pruned):
    *_, out, first, winner, before, sizes, report = pruned
    losers = sorted(t for t in first.trials["trial"] if t != winner)
    assert report.removed == losers
    assert report.freed_bytes == sum(sizes[t] for t in losers)
    assert folder_bytes(out) == before - report.freed_bytes


def test_a_rerun_after_pruning_trains_nothing_and_gives_the_same_table(pruned):
    _, split, settings, out, first, *_ = pruned
    lines: list[str] = []
    again = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out, log=lines.append)
    assert not [line for line in lines if "training" in line]
    assert sum("skipped" in line for line in lines) == len(first.trials)
    pd.testing.assert_frame_equal(again.trials, first.trials)


def test_a_checkpoint_without_a_result_is_left_alone(tmp_path):
    # it2 finished and lost, it4 won, it6 has a checkpoint but no result (a run in progress or killed)
    for trial in ("it2_roi16", "it4_roi16", "it6_roi16"):
        (tmp_path / trial).mkdir()
        (tmp_path / trial / CHECKPOINT_FILE).write_bytes(b"x" * 10)
    for trial in ("it2_roi16", "it4_roi16"):
        (tmp_path / trial / RESULT_FILE).write_text("{}")
    report = prune_losing_checkpoints(tmp_path, "it4_roi16")
    assert report.removed == ["it2_roi16"] and report.freed_bytes == 10
    assert not (tmp_path / "it2_roi16" / CHECKPOINT_FILE).exists()
    assert (tmp_path / "it4_roi16" / CHECKPOINT_FILE).is_file()
    assert (tmp_path / "it6_roi16" / CHECKPOINT_FILE).is_file()


def test_an_unknown_winner_removes_nothing(tmp_path):
    (tmp_path / "it2_roi16").mkdir()
    (tmp_path / "it2_roi16" / RESULT_FILE).write_text("{}")
    (tmp_path / "it2_roi16" / CHECKPOINT_FILE).write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="it9_roi9"):
        prune_losing_checkpoints(tmp_path, "it9_roi9")
    assert (tmp_path / "it2_roi16" / CHECKPOINT_FILE).is_file()


def test_a_pruned_loser_that_wins_later_is_retrained_to_the_same_weights(tmp_path):
    torch.set_num_threads(1)
    split = write_toy_coco(tmp_path / "splits")
    settings = build_settings(tmp_path, "smoke", {"train": {"device": "cpu"}})
    out = tmp_path / "models" / "acme" / "logo"
    first = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out)
    loser = "it2_roi16"
    kept = torch.load(out / "trials" / loser / CHECKPOINT_FILE, weights_only=True)["state_dict"]
    (out / "trials" / loser / CHECKPOINT_FILE).unlink()
    assert forget_pruned_winner(out / "trials", loser) is True
    assert forget_pruned_winner(out / "trials", loser) is False  # nothing left to forget
    lines: list[str] = []
    again = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out, log=lines.append)
    assert [line for line in lines if "training" in line] == [f"trial {loser}: training"]
    redone = torch.load(out / "trials" / loser / CHECKPOINT_FILE, weights_only=True)["state_dict"]
    assert all(torch.equal(kept[k], redone[k]) for k in kept)
    cols = ["trial", "mean_accuracy", "AP"]
    pd.testing.assert_frame_equal(again.trials[cols], first.trials[cols])
