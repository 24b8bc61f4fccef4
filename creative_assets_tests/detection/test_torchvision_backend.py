"""The torchvision backend: train → checkpoint → load → predict, determinism, snapshots, weights, registry."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import torch

from creative_assets.detection.architectures import (
    ARCHITECTURES,
    UnknownArchitectureError,
    WeightsUnavailableError,
    build_model,
)
from creative_assets.detection.backend import Predictions, TrialParams
from creative_assets.detection.checkpoint import CheckpointError
from creative_assets.detection.coco_data import read_bgr
from creative_assets.detection.registry import (
    BackendUnavailableError,
    get_backend,
    resolve_backend_name,
    resolve_device,
)
from creative_assets.detection.runtime import torch_threads
from creative_assets.detection.split_inference import predict_split
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.settings import TrainSettings, build_settings
from creative_assets_tests.support.coco_builders import write_toy_coco

CLASSES = ["logo", "product"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smoke_train(tmp_path, **overrides) -> TrainSettings:
    return build_settings(tmp_path, "smoke", {"train": {"device": "cpu", **overrides}}).train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One smoke training run shared by the read-only tests: 4 iterations, snapshot at 2."""
    folder = tmp_path_factory.mktemp("trained")
    torch.set_num_threads(1)
    split = write_toy_coco(folder / "data")
    settings = smoke_train(folder)
    seen = []
    result = TorchvisionBackend("cpu").train(
        split,
        CLASSES,
        TrialParams(4, 16),
        settings,
        folder / "run",
        snapshot_iters=[2],
        progress=lambda i, n, info: seen.append((i, n, info)),
    )
    return split, settings, result, seen


def state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_training_writes_snapshots_and_final_checkpoint(trained):
    _, _, result, _ = trained
    assert sorted(result.checkpoints) == [2, 4]
    assert all(p.is_file() for p in result.checkpoints.values())
    assert result.seconds[2] <= result.seconds[4]
    assert len(result.info["losses"]) == 4


def test_progress_reports_every_iteration_with_loss_and_lr(trained):
    _, settings, _, seen = trained
    assert [i for i, _, _ in seen] == [1, 2, 3, 4]
    assert all(n == 4 for _, n, _ in seen)
    assert all(np.isfinite(info["loss"]) for _, _, info in seen)
    assert seen[0][2]["lr"] == pytest.approx(settings.scaled_base_lr())


def test_checkpoint_is_a_plain_dict_loadable_with_weights_only(trained):
    _, settings, result, _ = trained
    ckpt = torch.load(result.checkpoints[4], map_location="cpu", weights_only=True)
    assert ckpt["architecture"] == "tiny" and ckpt["classes"] == CLASSES
    assert ckpt["params"] == {"max_iter": 4, "batch_size_per_image": 16}
    assert ckpt["train_settings"]["min_size_test"] == settings.min_size_test
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())


def test_predictions_are_in_input_image_pixels(trained, tmp_path):
    split, _, result, _ = trained
    detector = TorchvisionBackend("cpu").load(result.checkpoints[4])
    small = read_bgr(split.image_root / "images/img_00.png")  # 96 px short side = MIN_SIZE_TEST: no resize
    # nearest 2× upsampling, then the model's bilinear 0.5× resize, gives back exactly the small image
    big = cv2.resize(small, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    p_small, p_big = detector.predict([small, big], score_floor=0.0)
    assert len(p_small) > 0 and len(p_small) == len(p_big)
    np.testing.assert_allclose(p_big.scores, p_small.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p_big.boxes, 2 * p_small.boxes, rtol=1e-3, atol=1e-2)
    assert p_big.boxes[:, [0, 2]].max() <= big.shape[1] and p_big.boxes[:, [1, 3]].max() <= big.shape[0]


def test_predict_returns_typed_arrays_above_the_floor(trained):
    split, _, result, _ = trained
    detector = TorchvisionBackend("cpu").load(result.checkpoints[4])
    image = read_bgr(split.image_root / "images/img_01.png")
    (all_preds,) = detector.predict([image], score_floor=0.0)
    floor = float(np.median(all_preds.scores))
    (kept,) = detector.predict([image], score_floor=floor)
    assert isinstance(kept, Predictions)
    assert kept.boxes.dtype == np.float32 and kept.boxes.shape == (len(kept), 4)
    assert kept.scores.dtype == np.float32 and kept.labels.dtype == np.int64
    assert (kept.scores >= floor).all() and 0 < len(kept) <= len(all_preds)
    assert set(kept.labels.tolist()) <= {0, 1}
    assert detector.predict([], 0.0) == []


def test_save_and_load_round_trip_gives_identical_predictions(trained, tmp_path):
    split, _, result, _ = trained
    backend = TorchvisionBackend("cpu")
    first = backend.load(result.checkpoints[4])
    first.save(tmp_path / "copy.pth")
    second = backend.load(tmp_path / "copy.pth")
    a = predict_split(first, split, images_per_forward=3)
    b = predict_split(second, split, images_per_forward=3)
    assert sorted(a) == list(range(1, 9))
    for image_id in a:
        np.testing.assert_array_equal(a[image_id].boxes, b[image_id].boxes)
        np.testing.assert_array_equal(a[image_id].scores, b[image_id].scores)
        np.testing.assert_array_equal(a[image_id].labels, b[image_id].labels)


def test_split_inference_batches_do_not_change_predictions(trained):
    split, _, result, _ = trained
    detector = TorchvisionBackend("cpu").load(result.checkpoints[4])
    one = predict_split(detector, split, images_per_forward=1)
    many = predict_split(detector, split, images_per_forward=8)
    for image_id in one:
        np.testing.assert_allclose(one[image_id].scores, many[image_id].scores, rtol=1e-4, atol=1e-5)


def test_same_seed_gives_identical_losses_and_weights(tmp_path):
    split = write_toy_coco(tmp_path / "data")
    settings = smoke_train(tmp_path)
    backend = TorchvisionBackend("cpu")
    a = backend.train(split, CLASSES, TrialParams(3, 16), settings, tmp_path / "a")
    b = backend.train(split, CLASSES, TrialParams(3, 16), settings, tmp_path / "b")
    assert a.info["losses"] == b.info["losses"]
    sa, sb = state(a.checkpoints[3]), state(b.checkpoints[3])
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_other_seed_gives_other_weights(trained, tmp_path):
    split, _, result, _ = trained
    other = TorchvisionBackend("cpu").train(
        split, CLASSES, TrialParams(2, 16), smoke_train(tmp_path, seed=1), tmp_path / "other"
    )
    sa, sb = state(result.checkpoints[2]), state(other.checkpoints[2])
    assert not all(torch.equal(sa[k], sb[k]) for k in sa)


def test_snapshot_at_k_equals_a_separate_k_iteration_run(trained, tmp_path):
    split, settings, result, _ = trained
    separate = TorchvisionBackend("cpu").train(split, CLASSES, TrialParams(2, 16), settings, tmp_path / "k2")
    snap, alone = state(result.checkpoints[2]), state(separate.checkpoints[2])
    assert snap.keys() == alone.keys()
    assert all(torch.equal(snap[k], alone[k]) for k in snap)
    assert TorchvisionBackend.prefix_stable


def test_local_checkpoint_initialises_training(trained, tmp_path):
    split, _, result, _ = trained
    settings = smoke_train(tmp_path, weights=str(result.checkpoints[4]))
    run = TorchvisionBackend("cpu").train(split, ["logo"], TrialParams(1, 16), settings, tmp_path / "ft")
    assert "tensors loaded" in run.info["weights"]
    assert run.checkpoints[1].is_file()


def test_unreadable_weights_file_names_the_setting(trained, tmp_path):
    split, _, _, _ = trained
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"nope")
    with pytest.raises(WeightsUnavailableError, match="train.weights"):
        TorchvisionBackend("cpu").train(
            split, CLASSES, TrialParams(1, 16), smoke_train(tmp_path, weights=str(bad)), tmp_path / "x"
        )


def test_coco_weights_that_cannot_be_fetched_raise_a_clear_error(tmp_path, monkeypatch):
    """A download that cannot land: torch's cache root is a file, so the fetch fails here with or without a
    network, deterministically."""
    blocked = tmp_path / "torch_home"
    blocked.write_text("a file where torch wants its cache folder")
    monkeypatch.setenv("TORCH_HOME", str(blocked))
    settings = smoke_train(tmp_path, architecture="mobilenet_v3_large", weights="coco")
    with pytest.raises(WeightsUnavailableError, match=r"cannot get COCO weights.*train\.weights.*'none'"):
        build_model("mobilenet_v3_large", 1, settings, 16, "coco")


def test_tiny_architecture_has_no_pretrained_weights(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="train.weights"):
        build_model("tiny", 1, smoke_train(tmp_path), 16, "imagenet")


def test_unknown_architecture_is_refused_with_the_known_ones(tmp_path):
    with pytest.raises(UnknownArchitectureError, match="resnext101_32x8d"):
        build_model("vgg16", 1, smoke_train(tmp_path), 16)


def test_hyper_parameters_reach_the_torchvision_model(tmp_path):
    settings = smoke_train(tmp_path, rpn_batch_size_per_image=48, detections_per_image=7)
    model, note = build_model("tiny", 3, settings, 24)
    assert note == "none"
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 24
    assert model.rpn.fg_bg_sampler.batch_size_per_image == 48
    assert model.roi_heads.detections_per_img == 7
    assert model.rpn._pre_nms_top_n == {"training": 200, "testing": 200}
    assert model.transform.min_size == (96,) and model.transform.max_size == 160
    assert model.roi_heads.box_predictor.cls_score.out_features == 4


def test_load_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError):
        TorchvisionBackend("cpu").load(path)


def test_every_architecture_is_a_train_setting_and_routed_to_a_backend_that_builds_it():
    from creative_assets.detection.registry import BACKEND_ARCHITECTURES

    settings = set(TrainSettings.model_fields["architecture"].annotation.__args__)
    assert set(BACKEND_ARCHITECTURES["torchvision"]) == set(ARCHITECTURES)
    assert set(BACKEND_ARCHITECTURES["detectron2"]) | set(ARCHITECTURES) == settings


def test_cpu_threads_apply_inside_predict_only(trained):
    split, _, result, _ = trained
    detector = TorchvisionBackend("cpu", cpu_threads=2).load(result.checkpoints[4])
    assert detector.cpu_threads == 2
    with torch_threads(1):
        detector.predict([read_bgr(split.image_root / "images/img_00.png")])
        assert torch.get_num_threads() == 1


def test_torch_threads_restores_the_previous_count():
    before = torch.get_num_threads()
    with torch_threads(3):
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_auto_backend_is_torchvision_for_torchvision_only_architectures():
    assert resolve_backend_name(TrainSettings(backend="auto", architecture="tiny")) == "torchvision"
    assert (
        resolve_backend_name(TrainSettings(backend="auto", architecture="mobilenet_v3_large"))
        == "torchvision"
    )


def test_auto_backend_is_torchvision_without_detectron2():
    if importlib.util.find_spec("detectron2") is not None:
        pytest.skip("detectron2 is installed here")
    assert resolve_backend_name(TrainSettings(backend="auto")) == "torchvision"
    assert get_backend(TrainSettings(backend="auto")).name == "torchvision"
    with pytest.raises(BackendUnavailableError, match="train.backend"):
        resolve_backend_name(TrainSettings(backend="detectron2"))


def test_auto_device_follows_cuda_availability():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="train.device"):
            resolve_device("cuda")


def test_a_checkpoint_is_rebuilt_with_the_anchors_it_was_trained_with(tmp_path):
    split = write_toy_coco(tmp_path / "data")
    anchors = {"anchor_sizes": [[10, 14], [20, 28], [40, 56]], "aspect_ratios": [0.8, 1.0, 1.25]}
    result = TorchvisionBackend("cpu").train(
        split, CLASSES, TrialParams(1, 16), smoke_train(tmp_path, **anchors), tmp_path / "run"
    )
    detector = TorchvisionBackend("cpu").load(result.checkpoints[1])
    generator = detector.model.rpn.anchor_generator
    assert [list(s) for s in generator.sizes] == anchors["anchor_sizes"]
    assert [list(r) for r in generator.aspect_ratios] == [anchors["aspect_ratios"]] * 3
    default = TorchvisionBackend("cpu").train(
        split, CLASSES, TrialParams(1, 16), smoke_train(tmp_path), tmp_path / "default"
    )
    assert TorchvisionBackend("cpu").load(default.checkpoints[1]).model.rpn.anchor_generator.sizes[0] == (
        16,
        24,
    )


def test_anchors_of_another_layout_are_refused(tmp_path):
    settings = smoke_train(tmp_path, anchor_sizes=[[10], [20], [40]])
    with pytest.raises(ValueError, match="layout of tiny"):
        build_model("tiny", 2, settings, 16)
