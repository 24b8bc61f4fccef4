from pathlib import Path

import pytest

from creative_assets.settings import (
    SETTINGS_FILE,
    SettingsError,
    build_settings,
    load_settings,
    validate_brand,
)


def test_full_profile_is_the_case_study(tmp_path: Path):
    s = build_settings(tmp_path, "full")
    assert s.grid.max_iter == [300, 500, 1000]
    assert s.grid.batch_size_per_image == [256, 512, 1024]
    assert s.confidences == [0.2, 0.4, 0.6, 0.8]
    assert s.train.architecture == "resnext101_32x8d"
    assert s.detection.batch_size == 200
    assert s.frame_stride == 10


def test_linear_scaling_rule_gives_0_0025_for_two_images(tmp_path: Path):
    s = build_settings(tmp_path, "full")
    assert s.train.scaled_base_lr() == pytest.approx(0.02 * 2 / 16)


def test_case_study_learning_rate_reachable_by_override(tmp_path: Path):
    s = build_settings(tmp_path, "full", {"train": {"base_lr": 0.00125}})
    assert s.train.scaled_base_lr() == 0.00125


def test_threshold_sweep_is_80_values_from_0_20_to_0_99(tmp_path: Path):
    values = build_settings(tmp_path, "full").thresholds.values()
    assert len(values) == 80 and values[0] == 0.2 and values[-1] == 0.99 and values[1] == 0.21


def test_face_and_smile_pool_across_brands(tmp_path: Path):
    s = build_settings(tmp_path, "demo")
    assert [o.name for o in s.objects if o.pooled] == ["face", "smile"]
    assert s.object("logo").categories == ["logo"]


def test_settings_file_overrides_profile(tmp_path: Path):
    (tmp_path / SETTINGS_FILE).write_text("frame_stride: 5\ngrid:\n  max_iter: [7]\n")
    s = load_settings(tmp_path, "smoke", env={})
    assert s.frame_stride == 5
    assert s.grid.max_iter == [7]
    assert s.grid.batch_size_per_image == [16, 32]  # untouched keys keep the profile's values


def test_invalid_setting_names_the_key(tmp_path: Path):
    (tmp_path / SETTINGS_FILE).write_text("grid:\n  max_iter: [0, -3]\n")
    with pytest.raises(SettingsError, match=r"grid\.max_iter"):
        load_settings(tmp_path, "smoke", env={})


def test_unknown_key_is_refused_by_name(tmp_path: Path):
    (tmp_path / SETTINGS_FILE).write_text("frame_strid: 5\n")
    with pytest.raises(SettingsError, match="frame_strid"):
        load_settings(tmp_path, "smoke", env={})


def test_unknown_profile_lists_the_profiles(tmp_path: Path):
    with pytest.raises(SettingsError, match="smoke, demo, full"):
        load_settings(tmp_path, "fast", env={})


def test_environment_selects_root_profile_and_backend(tmp_path: Path):
    env = {
        "CREATIVE_ASSETS_DATA": str(tmp_path),
        "CREATIVE_ASSETS_PROFILE": "smoke",
        "CREATIVE_ASSETS_BACKEND": "torchvision",
    }
    s = load_settings(env=env)
    assert s.data_root == tmp_path.resolve() and s.profile == "smoke" and s.train.backend == "torchvision"


def test_explicit_arguments_beat_the_environment(tmp_path: Path):
    env = {
        "CREATIVE_ASSETS_DATA": str(tmp_path / "elsewhere"),
        "CREATIVE_ASSETS_PROFILE": "full",
        "CREATIVE_ASSETS_DEVICE": "cuda",
        "CREATIVE_ASSETS_EXECUTOR": "ray",
    }
    s = load_settings(tmp_path, "smoke", {"train": {"device": "cpu"}, "executor": "local"}, env=env)
    assert (s.data_root, s.profile) == (tmp_path.resolve(), "smoke")
    assert (s.train.device, s.executor) == ("cpu", "local")


def test_the_environment_still_beats_the_settings_file(tmp_path: Path):
    (tmp_path / SETTINGS_FILE).write_text("train: {device: cpu}\n")
    s = load_settings(tmp_path, "smoke", env={"CREATIVE_ASSETS_DEVICE": "cuda"})
    assert s.train.device == "cuda"


def test_settings_resource_overrides_beat_the_device_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from creative_assets.resources.settings_resource import SettingsResource

    monkeypatch.setenv("CREATIVE_ASSETS_DEVICE", "cuda")
    resource = SettingsResource(
        data_root=str(tmp_path), profile="smoke", overrides={"train": {"device": "cpu"}}
    )
    assert resource.load().train.device == "cpu"


def test_a_category_cannot_belong_to_two_objects(tmp_path: Path):
    with pytest.raises(SettingsError, match="objects"):
        build_settings(
            tmp_path,
            "smoke",
            {"objects": [{"name": "a", "categories": ["x"]}, {"name": "b", "categories": ["x"]}]},
        )


@pytest.mark.parametrize("name", ["acme", "globex-2", "a_b", "9lives"])
def test_valid_brand_names(name: str):
    assert validate_brand(name) == name


@pytest.mark.parametrize("name", ["Acme", "-acme", "ac me", "../etc", "", "a/b", "ä"])
def test_invalid_brand_names_state_the_rule(name: str):
    with pytest.raises(ValueError, match="lower-case letters, digits"):
        validate_brand(name)


def test_environment_selects_the_ray_executor(tmp_path: Path):
    s = load_settings(tmp_path, "smoke", env={"CREATIVE_ASSETS_EXECUTOR": "ray"})
    assert s.executor == "ray"


def test_cpu_profiles_on_detectron2_train_its_small_resnet18(tmp_path: Path):
    for profile in ("smoke", "demo"):
        on_d2 = build_settings(tmp_path, profile, {"train": {"backend": "detectron2"}})
        assert on_d2.train.architecture == "resnet18"
        auto = build_settings(tmp_path, profile, {"train": {"backend": "auto"}})
        assert auto.train.architecture == "tiny"
        # the input sizes and schedule stay the profile's
        assert on_d2.train.min_size_test == auto.train.min_size_test
        assert on_d2.train.steps == auto.train.steps
    # the demo's rate for tiny (0.02) diverges ResNet-18; it takes the linear scaling rule's 0.02 × 4 / 16
    demo = build_settings(tmp_path, "demo", {"train": {"backend": "detectron2"}})
    assert demo.train.scaled_base_lr() == pytest.approx(0.005)


def test_an_explicit_architecture_beats_the_backend_default(tmp_path: Path):
    cfg = build_settings(tmp_path, "smoke", {"train": {"backend": "detectron2", "architecture": "resnet50"}})
    assert cfg.train.architecture == "resnet50"


def test_warmup_longer_than_the_shortest_trial_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match=r"train.warmup_iters \(500\).*shortest grid.max_iter \(300\)"):
        build_settings(tmp_path, "full", {"train": {"warmup_iters": 500}})


def test_trial_checkpoints_are_pruned_unless_kept(tmp_path: Path):
    assert build_settings(tmp_path, "full").grid.keep_trial_checkpoints is False
    kept = build_settings(tmp_path, "full", {"grid": {"keep_trial_checkpoints": True}})
    assert kept.grid.keep_trial_checkpoints is True


def test_automation_never_trains_unless_the_settings_file_says_so(tmp_path: Path):
    assert load_settings(tmp_path, "demo", env={}).automation.train is False
    (tmp_path / "creative_assets.yaml").write_text("automation: {train: true}\n")
    assert load_settings(tmp_path, "demo", env={}).automation.train is True
