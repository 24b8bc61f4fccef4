"""The full profile on detectron2 is the case study's model: X101-32x8d FPN 3x from the model-zoo yaml.

The expected values are read from detectron2's own yaml files (an independent source), not from our code.
The one-iteration training of the real X101 on a CPU takes about half a minute, so it is marked slow;
`.ci/run` runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip(
    "detectron2", reason="detectron2 is not installed (it is not on PyPI; see README: detectron2)"
)

from creative_assets.detection.backend import CocoSplit, TrialParams  # noqa: E402
from creative_assets.detection.detectron2_backend import (  # noqa: E402
    Detectron2Backend,
    build_config,
    zoo_config_path,
)
from creative_assets.settings import build_settings  # noqa: E402

pytestmark = pytest.mark.detectron2

CASE_STUDY_YAML = "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml"


def _yaml_solver() -> dict:
    """SOLVER of the case study's yaml with its _BASE_ merged in, read with plain YAML."""
    path = zoo_config_path(CASE_STUDY_YAML)
    own = yaml.safe_load(path.read_text())
    base = yaml.safe_load((path.parent / own["_BASE_"]).read_text())
    return {**base["SOLVER"], **own.get("SOLVER", {})}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return build_settings(tmp_path_factory.mktemp("full"), "full", {"train": {"backend": "detectron2"}})


def test_full_profile_trains_the_case_study_architecture(full, tmp_path):
    cfg = build_config(full.train, ["logo"], TrialParams(300, 256), tmp_path)
    r = cfg.MODEL.RESNETS
    assert full.train.architecture == "resnext101_32x8d"
    assert (r.DEPTH, r.NUM_GROUPS, r.WIDTH_PER_GROUP, r.STRIDE_IN_1X1) == (101, 32, 8, False)
    assert (
        cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
        and cfg.MODEL.BACKBONE.NAME == "build_resnet_fpn_backbone"
    )
    assert cfg.MODEL.WEIGHTS.endswith("faster_rcnn_X_101_32x8d_FPN_3x/139173657/model_final_68b088.pkl")


def test_base_lr_is_the_yaml_rate_scaled_linearly_to_our_batch(full, tmp_path):
    solver = _yaml_solver()
    assert (solver["BASE_LR"], solver["IMS_PER_BATCH"]) == (0.02, 16)
    cfg = build_config(full.train, ["logo"], TrialParams(300, 256), tmp_path)
    assert cfg.SOLVER.IMS_PER_BATCH == full.train.ims_per_batch == 2
    assert (
        cfg.SOLVER.BASE_LR
        == pytest.approx(solver["BASE_LR"] * 2 / solver["IMS_PER_BATCH"])
        == pytest.approx(0.0025)
    )


@pytest.mark.parametrize("max_iter", [300, 500, 1000])
@pytest.mark.parametrize("batch_size_per_image", [256, 512, 1024])
def test_every_grid_cell_reaches_the_config(full, tmp_path, max_iter, batch_size_per_image):
    assert max_iter in full.grid.max_iter and batch_size_per_image in full.grid.batch_size_per_image
    cfg = build_config(
        full.train, ["logo", "logo_white"], TrialParams(max_iter, batch_size_per_image), tmp_path
    )
    assert cfg.SOLVER.MAX_ITER == max_iter
    assert cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == batch_size_per_image
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 2


def test_warmup_is_no_longer_than_the_shortest_trial(full, tmp_path):
    cfg = build_config(full.train, ["logo"], TrialParams(300, 256), tmp_path)
    assert _yaml_solver().get("WARMUP_ITERS", 1000) > min(full.grid.max_iter)  # why we override it
    assert 0 < cfg.SOLVER.WARMUP_ITERS <= min(full.grid.max_iter)
    assert cfg.SOLVER.STEPS == ()  # the yaml's 210k/250k steps lie beyond every trial


@pytest.mark.slow
def test_the_case_study_model_trains_one_iteration_on_a_cpu(full, tmp_path):
    """X101-32x8d FPN, random init (no network here), one 64 px image, one iteration: a finite loss."""
    image = np.full((64, 64, 3), 200, np.uint8)
    cv2.rectangle(image, (10, 12), (40, 36), (0, 0, 255), -1)
    cv2.imwrite(str(tmp_path / "a.jpg"), image)
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 12, 30, 24], "area": 720, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "logo"}],
    }
    (tmp_path / "train.json").write_text(json.dumps(coco))
    small = full.train.model_copy(
        update={
            "weights": "none", "device": "cpu", "warmup_iters": 0, "min_size_train": [64], "max_size_train": 64,
            "min_size_test": 64, "max_size_test": 64,
        }
    )  # fmt: skip
    losses: list[float] = []
    result = Detectron2Backend(device="cpu", loader_workers=0).train(
        CocoSplit(tmp_path / "train.json", tmp_path),
        ["logo"],
        TrialParams(1, 256),
        small,
        tmp_path / "out",
        progress=lambda _i, _n, info: losses.append(info["loss"]),
    )
    assert list(result.checkpoints) == [1] and Path(result.checkpoints[1]).is_file()
    assert len(losses) == 1 and np.isfinite(losses[0]) and losses[0] > 0
    detector = Detectron2Backend(device="cpu").load(result.checkpoints[1])
    assert detector.cfg.MODEL.RESNETS.DEPTH == 101 and detector.cfg.MODEL.RESNETS.NUM_GROUPS == 32
