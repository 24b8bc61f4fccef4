"""The detectron2 backend, trained for real on a few tiny images (skipped where detectron2 does not import)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

detectron2 = pytest.importorskip(
    "detectron2", reason="detectron2 is not installed (it is not on PyPI; see README: Installing detectron2)"
)

from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

from creative_assets.detection.architectures import UnknownArchitectureError, WeightsUnavailableError  # noqa: E402
from creative_assets.detection.backend import CocoSplit, Predictions, TrialParams  # noqa: E402
from creative_assets.detection.detectron2_backend import (  # noqa: E402
    CHECKPOINT_FORMAT,
    CheckpointError,
    Detectron2Backend,
    build_config,
    default_predictor_loop,
    register_coco_split,
)
from creative_assets.detection.solver import lr_at  # noqa: E402
from creative_assets.settings import TrainSettings  # noqa: E402

pytestmark = pytest.mark.detectron2

CLASSES = ["logo", "product"]
SIZE = 96
N_IMAGES = 8
# Warmup longer than the run: detectron2's stock scheduler would squeeze it into MAX_ITER, so the snapshot
# test below also checks that the LR schedule does not depend on MAX_ITER.
SETTINGS = TrainSettings(
    backend="detectron2",
    architecture="resnet50",
    weights="none",
    ims_per_batch=2,
    warmup_iters=10,
    warmup_factor=0.1,
    min_size_train=[64],
    max_size_train=96,
    min_size_test=64,
    max_size_test=96,
    rpn_pre_nms_top_n_train=100,
    rpn_post_nms_top_n_train=50,
    rpn_pre_nms_top_n_test=100,
    rpn_post_nms_top_n_test=50,
    rpn_batch_size_per_image=32,
    detections_per_image=20,
    device="cpu",
)
PARAMS = TrialParams(max_iter=3, batch_size_per_image=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the CPU is shared; one thread is faster than two fighting over it
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _write_split(root: Path, categories: list[str]) -> CocoSplit:
    """N_IMAGES grey images, each with a red rectangle (a logo); the odd ones also hold a blue disc (a product)."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(N_IMAGES):
        image = np.full((SIZE, SIZE, 3), 190, np.uint8)
        x, y = (int(v) for v in rng.integers(4, 48, size=2))
        cv2.rectangle(image, (x, y), (x + 36, y + 28), (0, 0, 255), -1)
        annotations.append({"image_id": i + 1, "category_id": 1, "bbox": [x, y, 36, 28], "area": 1008})
        if i % 2:
            cv2.circle(image, (70, 72), 12, (255, 0, 0), -1)
            annotations.append({"image_id": i + 1, "category_id": 2, "bbox": [58, 60, 24, 24], "area": 576})
        cv2.imwrite(str(root / "img" / f"{i}.jpg"), image)
        images.append({"id": i + 1, "file_name": f"img/{i}.jpg", "width": SIZE, "height": SIZE})
    for k, ann in enumerate(annotations):
        ann.update({"id": k + 1, "iscrowd": 0})
    doc = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(categories)],
    }
    (root / "train.json").write_text(json.dumps(doc), encoding="utf-8")
    return CocoSplit(json_path=root / "train.json", image_root=root)


def _paths(split: CocoSplit) -> list[Path]:
    return [Path(split.image_root) / "img" / f"{i}.jpg" for i in range(N_IMAGES)]


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> CocoSplit:
    return _write_split(tmp_path_factory.mktemp("coco"), CLASSES)


@pytest.fixture(scope="module")
def trained(split, tmp_path_factory):
    """One 3-iteration run with a snapshot at 2, and every progress call it made."""
    calls: list[tuple[int, int, dict[str, float]]] = []
    out = tmp_path_factory.mktemp("run")
    result = Detectron2Backend(device="cpu", loader_workers=0).train(
        split,
        CLASSES,
        PARAMS,
        SETTINGS,
        out,
        snapshot_iters=[2],
        progress=lambda i, n, info: calls.append((i, n, info)),
    )
    return result, calls


@pytest.fixture(scope="module")
def detector(trained):
    return Detectron2Backend(device="cpu").load(trained[0].checkpoints[3])


def _same_detections(a: Predictions, b: Predictions) -> bool:
    """Same detections up to float noise; order may differ between near-equal scores."""
    if len(a) != len(b):
        return False
    for box, score, label in zip(a.boxes, a.scores, a.labels, strict=True):
        close = (
            (b.labels == label)
            & (np.abs(b.scores - score) < 1e-4)
            & (np.abs(b.boxes - box).max(axis=1) < 1e-2)
        )
        if not close.any():
            return False
    return True


def test_train_saves_checkpoints_at_snapshot_iterations_and_at_max_iter(trained):
    result, _ = trained
    assert sorted(result.checkpoints) == [2, 3]
    assert all(path.is_file() for path in result.checkpoints.values())
    assert 0 < result.seconds[2] < result.seconds[3]


def test_progress_reports_each_iteration_with_loss_and_the_scheduled_lr(trained):
    _, calls = trained
    assert [(i, n) for i, n, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(np.isfinite(info["loss"]) and info["loss"] > 0 for _, _, info in calls)
    assert [info["lr"] for _, _, info in calls] == pytest.approx([lr_at(SETTINGS, t) for t in range(3)])


def test_checkpoint_is_a_plain_dict_that_loads_with_weights_only(trained):
    ckpt = torch.load(trained[0].checkpoints[3], weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT
    assert (ckpt["architecture"], ckpt["classes"], ckpt["iteration"]) == ("resnet50", CLASSES, 3)
    assert "NUM_CLASSES: 2" in ckpt["cfg"]
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())


def test_snapshot_equals_a_run_of_that_many_iterations(trained, split, tmp_path):
    short = Detectron2Backend(device="cpu", loader_workers=0).train(
        split, CLASSES, TrialParams(2, PARAMS.batch_size_per_image), SETTINGS, tmp_path
    )
    snapshot = torch.load(trained[0].checkpoints[2], weights_only=True)["state_dict"]
    separate = torch.load(short.checkpoints[2], weights_only=True)["state_dict"]
    assert snapshot.keys() == separate.keys()
    assert all(torch.equal(snapshot[k], separate[k]) for k in snapshot)


def test_loaded_detector_predicts_boxes_in_input_pixels_with_labels_of_the_classes(detector, split):
    image = cv2.resize(cv2.imread(str(_paths(split)[0])), (256, 192))  # test size 64 → 64 × 85 inside
    (pred,) = detector.predict([image])
    assert len(pred) > 0
    assert pred.boxes.dtype == np.float32 and pred.labels.dtype == np.int64
    assert set(pred.labels.tolist()) <= set(range(len(CLASSES)))
    assert pred.boxes.min() >= 0 and pred.boxes[:, [0, 2]].max() <= 256 and pred.boxes[:, [1, 3]].max() <= 192
    assert pred.boxes[:, 2].max() > 85


def test_predict_keeps_only_scores_at_or_above_the_floor(detector, split):
    image = cv2.imread(str(_paths(split)[1]))
    (everything,) = detector.predict([image])
    floor = float(np.median(everything.scores))
    (kept,) = detector.predict([image], score_floor=floor)
    assert (kept.scores >= floor).all()
    assert len(kept) == int((everything.scores >= floor).sum())


def test_batched_predict_equals_the_default_predictor_loop(detector, trained, split):
    paths = _paths(split)[:4]
    batched = detector.predict([cv2.imread(str(p)) for p in paths])
    one_by_one = default_predictor_loop(trained[0].checkpoints[3], paths, device="cpu")
    assert len(batched) == len(one_by_one) == 4
    assert all(_same_detections(a, b) for a, b in zip(batched, one_by_one, strict=True))


def test_evaluate_reports_coco_ap_from_cocoevaluator(detector, split):
    metrics = Detectron2Backend(device="cpu").evaluate(detector, split)
    assert {"AP", "AP50", "AP-logo", "AP-product"} <= metrics.keys()
    assert 0.0 <= metrics["AP50"] <= 100.0


def test_training_can_start_from_a_checkpoint_of_this_backend(trained, split, tmp_path):
    settings = SETTINGS.model_copy(update={"weights": str(trained[0].checkpoints[3])})
    result = Detectron2Backend(device="cpu", loader_workers=0).train(
        split, CLASSES, TrialParams(1, PARAMS.batch_size_per_image), settings, tmp_path
    )
    assert "0 initialised" in result.info["weights"]
    assert sorted(result.checkpoints) == [1]


def test_load_rejects_a_file_that_is_not_a_checkpoint_of_this_backend(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a detectron2-backend checkpoint"):
        Detectron2Backend(device="cpu").load(path)


def test_missing_local_weights_file_is_an_error_naming_train_weights(split, tmp_path):
    settings = SETTINGS.model_copy(update={"weights": str(tmp_path / "absent.pth")})
    with pytest.raises(WeightsUnavailableError, match="train.weights"):
        Detectron2Backend(device="cpu").train(split, CLASSES, PARAMS, settings, tmp_path / "out")


@pytest.mark.parametrize("architecture", ["mobilenet_v3_large", "tiny"])
def test_architecture_without_a_detectron2_config_is_an_error_naming_the_setting(architecture, tmp_path):
    settings = SETTINGS.model_copy(update={"architecture": architecture})
    with pytest.raises(UnknownArchitectureError, match=r"train\.architecture.*resnext101_32x8d, resnet50"):
        build_config(settings, CLASSES, PARAMS, tmp_path)


def test_base_lr_follows_the_linear_scaling_rule_from_the_reference_batch(tmp_path):
    cfg = build_config(
        TrainSettings(ims_per_batch=2, architecture="resnext101_32x8d"), CLASSES, PARAMS, tmp_path
    )
    assert cfg.SOLVER.BASE_LR == pytest.approx(0.02 * 2 / 16) == pytest.approx(0.0025)
    assert cfg.SOLVER.IMS_PER_BATCH == 2


def test_case_study_override_of_base_lr_reaches_the_config(tmp_path):
    cfg = build_config(
        TrainSettings(base_lr=0.00125, architecture="resnext101_32x8d"), CLASSES, PARAMS, tmp_path
    )
    assert cfg.SOLVER.BASE_LR == pytest.approx(0.00125)


def test_resnext101_maps_to_the_case_study_config_with_trial_params(tmp_path):
    settings = TrainSettings(architecture="resnext101_32x8d", weights="imagenet", steps=[200], device="cpu")
    cfg = build_config(settings, ["logo"], TrialParams(500, 512), tmp_path)
    resnets = cfg.MODEL.RESNETS
    assert (resnets.DEPTH, resnets.NUM_GROUPS, resnets.WIDTH_PER_GROUP) == (101, 32, 8)
    assert cfg.MODEL.WEIGHTS.endswith("X-101-32x8d.pkl")
    assert (cfg.SOLVER.MAX_ITER, cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE) == (500, 512)
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 1
    assert (cfg.SOLVER.STEPS, cfg.SOLVER.WARMUP_ITERS, cfg.INPUT.MIN_SIZE_TEST) == ((200,), 1000, 800)


def test_registering_a_split_twice_gives_one_dataset_with_the_classes(split):
    first = register_coco_split(split, CLASSES)
    assert register_coco_split(split, CLASSES) == first
    assert DatasetCatalog.list().count(first) == 1
    assert len(DatasetCatalog.get(first)) == N_IMAGES
    assert MetadataCatalog.get(first).thing_classes == CLASSES


def test_registering_a_split_whose_categories_are_not_the_classes_is_an_error(split):
    with pytest.raises(ValueError, match="are not the classes to train"):
        register_coco_split(split, ["product", "logo"])


def test_resnet18_is_the_r50_fpn_yaml_with_detectron2s_own_depth_and_width_keys(tmp_path):
    settings = SETTINGS.model_copy(update={"architecture": "resnet18"})
    cfg = build_config(settings, CLASSES, PARAMS, tmp_path)
    assert (cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS, cfg.MODEL.FPN.OUT_CHANNELS) == (
        18,
        64,
        64,
    )
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == [[16], [32], [64], [128], [256]]
    assert cfg.MODEL.ROI_BOX_HEAD.FC_DIM == 256 and cfg.MODEL.ROI_HEADS.NUM_CLASSES == len(CLASSES)
    from detectron2.modeling import build_model as d2_build_model

    params = sum(p.numel() for p in d2_build_model(cfg).parameters())
    assert 10e6 < params < 15e6  # ResNet-18 (11.2 M) plus a slim FPN and heads


@pytest.mark.parametrize("weights", ["coco", "imagenet"])
def test_resnet18_has_no_published_weights(tmp_path, weights):
    settings = SETTINGS.model_copy(update={"architecture": "resnet18", "weights": weights})
    with pytest.raises(WeightsUnavailableError, match=f"no {weights} weights for resnet18"):
        build_config(settings, CLASSES, PARAMS, tmp_path)


def test_the_registry_routes_exactly_the_architectures_this_backend_builds():
    from creative_assets.detection.detectron2_backend import ARCHITECTURE_CONFIGS
    from creative_assets.detection.registry import BACKEND_ARCHITECTURES

    assert set(ARCHITECTURE_CONFIGS) == set(BACKEND_ARCHITECTURES["detectron2"])


def test_coco_weights_that_cannot_be_fetched_raise_a_clear_error(split, tmp_path, monkeypatch):
    """detectron2's download cache root is a file, so the fetch fails with or without a network."""
    blocked = tmp_path / "fvcore_cache"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("FVCORE_CACHE", str(blocked))
    settings = SETTINGS.model_copy(update={"weights": "coco"})
    with pytest.raises(WeightsUnavailableError, match=r"cannot get the coco weights.*train\.weights"):
        Detectron2Backend(device="cpu").train(split, CLASSES, PARAMS, settings, tmp_path / "out")


def test_fitted_anchors_reach_the_anchor_generator_one_size_list_per_fpn_level(tmp_path):
    anchors = {"anchor_sizes": [[12], [24], [48], [96], [192]], "aspect_ratios": [0.8, 1.0, 1.25]}
    cfg = build_config(SETTINGS.model_copy(update=anchors), CLASSES, PARAMS, tmp_path)
    assert cfg.MODEL.ANCHOR_GENERATOR.SIZES == anchors["anchor_sizes"]
    assert cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS == [anchors["aspect_ratios"]]
    from detectron2.modeling import build_model as d2_build_model

    generator = d2_build_model(cfg).proposal_generator.anchor_generator
    # the model built from the config (as a checkpoint's cfg is at load time) places those anchors
    assert [round(float(a[:, 2].sub(a[:, 0]).max())) for a in generator.cell_anchors] == [
        round(s[0] * 1.25**0.5) for s in anchors["anchor_sizes"]
    ]


def test_the_training_mapper_applies_the_shared_augmentation_with_boxes_on_the_object(split):
    from creative_assets.detection.detectron2_backend.data import AugmentingMapper
    from creative_assets.settings import AugmentSettings

    augment = AugmentSettings(
        scale_jitter_prob=1.0, blur_prob=1.0, jpeg_prob=1.0, color_prob=1.0, cutout_prob=0.0
    )
    mapper = AugmentingMapper(SETTINGS.model_copy(update={"augment": augment}))
    record = DatasetCatalog.get(register_coco_split(split, CLASSES))[0]
    np.random.seed(0)
    sample = mapper(record)
    image = sample["image"].numpy().transpose(1, 2, 0)  # BGR, as detectron2's INPUT.FORMAT
    assert sample["instances"].image_size == image.shape[:2] == (sample["height"], sample["width"])
    assert sample["instances"].gt_classes.tolist() == [0]
    x0, y0, x1, y1 = sample["instances"].gt_boxes.tensor[0].round().int().tolist()
    b, g, r = (image[y0:y1, x0:x1, k].astype(int) for k in range(3))
    assert ((r - np.maximum(b, g)) > 40).mean() > 0.5  # the red logo is inside its box


def test_two_threads_running_the_detector_side_by_side_equal_one_after_another(detector, split):
    from creative_assets.detection.model_threads import ModelThreads

    images = [cv2.imread(str(p)) for p in _paths(split)[:4]]
    sequential = detector.predict(images)
    with ModelThreads(2) as threads:  # one model, two threads: each half of the chunk at the same time
        (side_by_side,) = threads.predict([detector], images, 0.0)
    assert sum(map(len, sequential)) > 0
    assert all(_same_detections(a, b) for a, b in zip(side_by_side, sequential, strict=True))
