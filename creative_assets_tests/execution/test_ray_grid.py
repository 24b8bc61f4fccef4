"""The grid on Ray Tune: the trials, files and table of run_grid, resume by trial files, failures as rows."""

from __future__ import annotations

import re
import shutil
import sys

import pandas as pd
import pytest
import torch

from creative_assets.detection.grid import CHECKPOINT_FILE, RESULT_FILE
from creative_assets.detection.grid_executors import run_grid
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.execution.ray_cluster import connect, import_ray
from creative_assets.execution.ray_grid import GRID_ERROR_COLUMNS, TUNE_FOLDER, run_grid_ray
from creative_assets.settings import build_settings
from creative_assets_tests.support.coco_builders import write_toy_coco

CLASSES = ["logo", "product"]
TIMING_COLUMNS = ["train_seconds"]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of two CPUs for this module, shut down at its end; its tests skip without Ray."""
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smoke_settings(root, **overrides):
    return build_settings(root, "smoke", {"train": {"device": "cpu"}, **overrides})


@pytest.fixture(scope="module")
def grids(ray_cluster, tmp_path_factory):
    """The smoke grid (MAX_ITER {2, 4} × BATCH_SIZE_PER_IMAGE {16, 32}) run locally and on Ray."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("root")
    split = write_toy_coco(root / "splits")
    settings = smoke_settings(root)
    local = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, root / "models/acme/local")
    lines: list[str] = []
    on_ray = run_grid_ray(
        "torchvision", split, split, CLASSES, settings, root / "models/acme/ray", log=lines.append
    )
    return root, split, settings, local, on_ray, lines


def test_missing_ray_is_an_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when Ray is not installed
    with pytest.raises(ImportError, match=re.escape('pip install -e ".[ray]"')):
        import_ray()


def test_ray_grid_table_equals_the_local_table(grids):
    _, _, _, local, on_ray, _ = grids
    columns = [c for c in local.trials.columns if c not in TIMING_COLUMNS + ["checkpoint"]]
    assert len(on_ray.trials) == 4
    pd.testing.assert_frame_equal(on_ray.trials[columns], local.trials[columns], rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(on_ray.long, local.long, rtol=1e-9, atol=1e-12)
    assert on_ray.errors.empty and list(on_ray.errors.columns) == GRID_ERROR_COLUMNS


def test_ray_trials_share_training_runs_like_the_local_grid(grids):
    on_ray, lines = grids[4], grids[5]
    assert set(on_ray.trials["shared_run"]) == {"roi16_it4", "roi32_it4"}
    assert "2 training runs as Ray Tune trials, each with {'cpu': 1}" in lines
    assert sum("training to 4 iterations, snapshots at [2]" in line for line in lines) == 2


def test_ray_trials_save_the_same_weights_as_local_trials(grids):
    root = grids[0]
    for trial in ("it2_roi16", "it4_roi32"):
        ours = torch.load(root / f"models/acme/ray/trials/{trial}/{CHECKPOINT_FILE}", weights_only=True)
        theirs = torch.load(root / f"models/acme/local/trials/{trial}/{CHECKPOINT_FILE}", weights_only=True)
        assert ours["state_dict"].keys() == theirs["state_dict"].keys()
        for name, tensor in ours["state_dict"].items():
            assert torch.equal(tensor, theirs["state_dict"][name]), f"{trial}: {name} differs"


def test_trial_files_sit_where_run_grid_puts_them_and_nothing_else_is_left(grids):
    root, _, _, _, on_ray, _ = grids
    for trial, checkpoint in zip(on_ray.trials["trial"], on_ray.trials["checkpoint"], strict=True):
        assert checkpoint == f"models/acme/ray/trials/{trial}/{CHECKPOINT_FILE}"
        assert (root / checkpoint).is_file()
        assert (root / f"models/acme/ray/trials/{trial}/{RESULT_FILE}").is_file()
    assert not (root / "models/acme/ray" / TUNE_FOLDER).exists()
    runs = root / "models/acme/ray/runs"
    assert not runs.exists() or not any(runs.iterdir())


def test_local_grid_resumes_from_trials_made_on_ray(grids, tmp_path):
    root, split, settings, _, on_ray, _ = grids
    out = tmp_path / "copied"
    shutil.copytree(root / "models/acme/ray", out)
    lines: list[str] = []
    local = run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, out, log=lines.append)
    assert sum("finished earlier, skipped" in line for line in lines) == 4
    assert not any("training" in line for line in lines)
    columns = ["trial", "mean_accuracy", "AP", "AP50", "tp_20", "recall_60"]
    pd.testing.assert_frame_equal(local.trials[columns], on_ray.trials[columns])


def test_rerun_on_ray_retrains_only_the_trial_whose_result_is_missing(grids):
    root, split, settings, _, first, _ = grids
    out = root / "models/acme/ray"
    (out / "trials/it2_roi32" / RESULT_FILE).unlink()
    kept = ("it2_roi16", "it4_roi16", "it4_roi32")
    mtimes = {t: (out / "trials" / t / RESULT_FILE).stat().st_mtime_ns for t in kept}
    lines: list[str] = []
    again = run_grid_ray("torchvision", split, split, CLASSES, settings, out, log=lines.append)
    assert [line for line in lines if "training" in line and "Ray Tune" not in line] == [
        "trial it2_roi32: training"
    ]
    assert "1 training runs as Ray Tune trials, each with {'cpu': 1}" in lines
    assert sum("skipped" in line for line in lines) == 3
    assert {t: (out / "trials" / t / RESULT_FILE).stat().st_mtime_ns for t in kept} == mtimes
    columns = ["trial", "mean_accuracy", "AP", "AP50", "tp_20", "fp_40"]
    pd.testing.assert_frame_equal(again.trials[columns], first.trials[columns])
    assert again.errors.empty


def test_a_run_that_keeps_failing_is_an_error_row_per_trial(ray_cluster, tmp_path):
    split = write_toy_coco(tmp_path / "valid")
    broken = write_toy_coco(tmp_path / "train")
    shutil.rmtree(tmp_path / "train" / "images")
    settings = smoke_settings(tmp_path, grid={"max_iter": [2], "batch_size_per_image": [16]})
    lines: list[str] = []
    result = run_grid_ray(
        "torchvision", broken, split, CLASSES, settings, tmp_path / "grid", log=lines.append, max_failures=1
    )
    assert result.trials.empty and result.long.empty
    assert result.errors["trial"].tolist() == ["it2_roi16"]
    assert result.errors["run"].tolist() == ["it2_roi16"]
    assert "cannot read image" in result.errors["error"].iloc[0]
    assert any("failed after 2 attempts" in line for line in lines)
    assert not (tmp_path / "grid/trials/it2_roi16" / RESULT_FILE).exists()


def test_connect_keeps_the_running_cluster(ray_cluster):
    assert connect("ray://elsewhere:10001", num_cpus=1) == ray_cluster
