"""Settings: one validated object built from a profile, an optional settings file and the environment.

Precedence (later wins): profile defaults < `<data root>/creative_assets.yaml` < environment variables
(`CREATIVE_ASSETS_DATA`, `CREATIVE_ASSETS_PROFILE`, `CREATIVE_ASSETS_BACKEND`, `CREATIVE_ASSETS_DEVICE`,
`CREATIVE_ASSETS_EXECUTOR`) < explicit arguments (`load_settings(data_root, profile, overrides)`, i.e.
`SettingsResource` fields and `--profile`/`--data`).
The core never reads the environment: assets and the CLI load settings once and pass them down.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from creative_assets.settings_sections import (
    AugmentSettings,
    AutomationSettings,
    DetectionSettings,
    FitSettings,
    GridSettings,
    LabellingSettings,
    MediaSettings,
    ObjectSpec,
    RemovalSettings,
    SplitSettings,
    ThresholdSettings,
    TilingSettings,
    TrainSettings,
    _Strict,
    default_objects,
)

# re-exported: the sections are defined in settings_sections and imported from here (the rest of the API is below)
__all__ = [
    "AugmentSettings",
    "AutomationSettings",
    "DetectionSettings",
    "FitSettings",
    "GridSettings",
    "LabellingSettings",
    "MediaSettings",
    "ObjectSpec",
    "RemovalSettings",
    "SplitSettings",
    "ThresholdSettings",
    "TilingSettings",
    "TrainSettings",
]

DATA_ENV = "CREATIVE_ASSETS_DATA"
PROFILE_ENV = "CREATIVE_ASSETS_PROFILE"
BACKEND_ENV = "CREATIVE_ASSETS_BACKEND"
DEVICE_ENV = "CREATIVE_ASSETS_DEVICE"
EXECUTOR_ENV = "CREATIVE_ASSETS_EXECUTOR"
SETTINGS_FILE = "creative_assets.yaml"
PROFILES = ("smoke", "demo", "full")
DEFAULT_PROFILE = "demo"

BRAND_RULE = "a brand name is lower-case letters, digits, '_' and '-', starting with a letter or digit"
_BRAND_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class SettingsError(ValueError):
    """Invalid settings; the message names the offending key."""


def validate_brand(name: str) -> str:
    """Return `name` if it is a valid brand (partition key and folder name), else raise ValueError."""
    if not isinstance(name, str) or not _BRAND_RE.fullmatch(name) or len(name) > 64:
        raise ValueError(f"invalid brand {name!r}: {BRAND_RULE} (at most 64 characters)")
    return name


class Settings(_Strict):
    """Everything the pipeline needs, validated once."""

    data_root: Path
    profile: Literal["smoke", "demo", "full"] = DEFAULT_PROFILE
    objects: list[ObjectSpec] = Field(default_factory=default_objects)
    frame_stride: int = Field(10, gt=0)
    jpeg_quality: int = Field(95, ge=50, le=100)
    split: SplitSettings = Field(default_factory=SplitSettings)
    grid: GridSettings
    confidences: list[float] = Field(default_factory=lambda: [0.2, 0.4, 0.6, 0.8])
    thresholds: ThresholdSettings = Field(default_factory=ThresholdSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    fit: FitSettings = Field(default_factory=FitSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    executor: Literal["local", "ray"] = "local"
    media: MediaSettings = Field(default_factory=MediaSettings)
    removal: RemovalSettings = Field(default_factory=RemovalSettings)
    week_start: Literal["monday", "sunday"] = Field("monday", description="first day of an MMM panel week")
    labelling: LabellingSettings = Field(default_factory=LabellingSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)

    @field_validator("objects")
    @classmethod
    def _objects_unique(cls, v: list[ObjectSpec]) -> list[ObjectSpec]:
        if not v:
            raise ValueError("at least one object is needed")
        names = [o.name for o in v]
        if len(set(names)) != len(names):
            raise ValueError("object names must be unique")
        cats = [c for o in v for c in o.categories]
        if len(set(cats)) != len(cats):
            raise ValueError("a label category may belong to one object only")
        return v

    @model_validator(mode="after")
    def _warmup_within_every_trial(self) -> Settings:
        shortest = min(self.grid.max_iter)
        if self.train.warmup_iters > shortest:
            raise ValueError(
                f"train.warmup_iters ({self.train.warmup_iters}) is longer than the shortest grid.max_iter "
                f"({shortest}): that trial would never train at BASE_LR"
            )
        return self

    @field_validator("confidences")
    @classmethod
    def _confidences(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < c < 1 for c in v):
            raise ValueError("confidences must be a non-empty list of values between 0 and 1")
        return sorted(v)

    def object(self, name: str) -> ObjectSpec:
        """The object called `name`; KeyError naming the known objects otherwise."""
        for o in self.objects:
            if o.name == name:
                return o
        raise KeyError(f"unknown object {name!r}; known: {', '.join(self.object_names)}")

    @property
    def object_names(self) -> list[str]:
        """Object names in settings order."""
        return [o.name for o in self.objects]

    def category_to_object(self) -> dict[str, str]:
        """Label category → object name."""
        return {c: o.name for o in self.objects for c in o.categories}


# Profile defaults. smoke: seconds (tests). demo: the whole graph on 2 CPU cores in minutes.
# full: the case study (X101-32x8d FPN 3x, its grid, 0.20–0.99 thresholds, batches of 200) for a GPU.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": {
        "grid": {"max_iter": [2, 4], "batch_size_per_image": [16, 32]},
        "train": {
            "architecture": "tiny",
            "weights": "none",
            "warmup_iters": 0,
            "min_size_train": [96],
            "max_size_train": 160,
            "min_size_test": 96,
            "max_size_test": 160,
            "rpn_pre_nms_top_n_train": 200,
            "rpn_post_nms_top_n_train": 100,
            "rpn_pre_nms_top_n_test": 200,
            "rpn_post_nms_top_n_test": 100,
            "rpn_batch_size_per_image": 32,
            "detections_per_image": 20,
            "base_lr": 0.01,
            "cpu_threads": 1,
            # a handful of iterations learns nothing from nuisances; tests of the augmentations call them directly
            "augment": {"enabled": False},
        },
        "detection": {"batch_size": 4, "images_per_forward": 2, "loader_workers": 0},
        # the fit still chooses anchors; the input never grows, so tests keep their seconds
        "fit": {"max_short_side": 96},
    },
    "demo": {
        # Two runs of 400 iterations per object (the 200 trials are snapshots of them), one per CPU core.
        "grid": {"max_iter": [200, 400], "batch_size_per_image": [32, 64], "parallel_runs": 2},
        "train": {
            "architecture": "tiny",
            "weights": "none",
            "ims_per_batch": 4,
            # 4× the linear scaling rule's 0.005: the small model trained from scratch tolerates it and
            # learns within the budget; higher rates diverged.
            "base_lr": 0.02,
            "warmup_iters": 50,
            "steps": [300],
            "min_size_train": [144, 160, 176],
            "max_size_train": 256,
            "min_size_test": 160,
            "max_size_test": 256,
            "rpn_pre_nms_top_n_train": 300,
            "rpn_post_nms_top_n_train": 150,
            "rpn_pre_nms_top_n_test": 300,
            "rpn_post_nms_top_n_test": 100,
            "rpn_batch_size_per_image": 64,
            "detections_per_image": 30,
            "cpu_threads": 1,
        },
        "detection": {"batch_size": 50, "images_per_forward": 8, "loader_workers": 1},
        # at most 1.6× the 160 px input (≈2.6× the pixels) for labels with very small boxes
        "fit": {"max_short_side": 256},
    },
    "full": {
        "grid": {"max_iter": [300, 500, 1000], "batch_size_per_image": [256, 512, 1024]},
        # WARMUP_ITERS: the 3x yaml's 1000 is longer than every trial of the grid; 100 keeps the shortest
        # (300) mostly at BASE_LR.
        "train": {"architecture": "resnext101_32x8d", "weights": "coco", "warmup_iters": 100},
        "detection": {"batch_size": 200, "images_per_forward": 16, "loader_workers": 4},
    },
}

# Profile defaults that differ by backend, applied when `train.backend` is set to that backend explicitly
# (`auto` keeps the profile's own architecture, which picks its backend). `tiny` is torchvision's; on
# detectron2 the CPU profiles train its small ResNet-18 FPN at the same input sizes.
PROFILE_BACKEND_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {"detectron2": {"train": {"architecture": "resnet18"}}},
    # base_lr: the demo's 0.02 (4× the scaling rule, tuned for `tiny`) made ResNet-18 diverge at the end of
    # warm-up (NaN boxes at iteration 54); the linear scaling rule's 0.005 trains it.
    "demo": {"detectron2": {"train": {"architecture": "resnet18", "base_lr": None}}},
}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _format_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid settings ({source}):"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines)


def build_settings(
    data_root: str | Path, profile: str = DEFAULT_PROFILE, overrides: dict[str, Any] | None = None
) -> Settings:
    """Settings for `profile` with `overrides` merged on top; no files, no environment."""
    if profile not in PROFILES:
        raise SettingsError(f"invalid settings: profile: {profile!r} is not one of {', '.join(PROFILES)}")
    overrides = overrides or {}
    backend = (overrides.get("train") or {}).get("backend")
    defaults = _deep_merge(
        PROFILE_DEFAULTS[profile], PROFILE_BACKEND_DEFAULTS.get(profile, {}).get(str(backend), {})
    )
    raw = _deep_merge(defaults, overrides)
    raw["data_root"] = Path(data_root)
    raw["profile"] = profile
    try:
        return Settings.model_validate(raw)
    except ValidationError as err:
        raise SettingsError(_format_error(err, f"profile {profile}")) from None


class DataRootError(SettingsError):
    """A data root that does not exist or is not a folder."""


def require_data_root(data_root: str | Path) -> Path:
    """`data_root` if it is an existing folder, else DataRootError: a mistyped root or a missing mount must
    never be read as an empty data root (only `demo-data` and `demo` create one)."""
    path = Path(data_root)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataRootError(
            f"the data root {path} {what}; check {DATA_ENV} or --data (is the share mounted?). "
            "Only `creative-assets demo-data` and `creative-assets demo` create a new data root"
        )
    return path


def read_settings_file(data_root: Path) -> dict[str, Any]:
    """The override mapping in `<data root>/creative_assets.yaml`, or {} when absent."""
    path = Path(data_root) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise SettingsError(
            f"invalid settings ({path}): not UTF-8 text: {err.reason} at byte {err.start}"
        ) from None
    except yaml.YAMLError as err:
        raise SettingsError(f"invalid settings ({path}): not valid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"invalid settings ({path}): the file must hold a mapping of keys")
    for forbidden in ("data_root",):
        if forbidden in loaded:
            raise SettingsError(f"invalid settings ({path}): {forbidden}: set it with {DATA_ENV}, not here")
    return loaded


def load_settings(
    data_root: str | Path | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Settings for the data root: profile < settings file < environment < explicit arguments."""
    env = dict(os.environ) if env is None else env
    root = Path(data_root or env.get(DATA_ENV) or "data").expanduser().resolve()
    file_overrides = read_settings_file(root)
    chosen_profile = profile or env.get(PROFILE_ENV) or file_overrides.pop("profile", None) or DEFAULT_PROFILE
    file_overrides.pop("profile", None)
    from_env: dict[str, Any] = {}
    if env.get(BACKEND_ENV):
        from_env.setdefault("train", {})["backend"] = env[BACKEND_ENV]
    if env.get(DEVICE_ENV):
        from_env.setdefault("train", {})["device"] = env[DEVICE_ENV]
    if env.get(EXECUTOR_ENV):
        from_env["executor"] = env[EXECUTOR_ENV]
    # explicit arguments (SettingsResource.overrides) come last so they beat the environment
    merged = _deep_merge(_deep_merge(file_overrides, from_env), overrides or {})
    try:
        return build_settings(root, chosen_profile, merged)
    except SettingsError as err:
        if (root / SETTINGS_FILE).is_file():
            raise SettingsError(f"{err}\n  (settings file: {root / SETTINGS_FILE})") from None
        raise
