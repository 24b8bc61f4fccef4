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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
_OBJECT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class SettingsError(ValueError):
    """Invalid settings; the message names the offending key."""


def validate_brand(name: str) -> str:
    """Return `name` if it is a valid brand (partition key and folder name), else raise ValueError."""
    if not isinstance(name, str) or not _BRAND_RE.fullmatch(name) or len(name) > 64:
        raise ValueError(f"invalid brand {name!r}: {BRAND_RULE} (at most 64 characters)")
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TilingSettings(_Strict):
    """Tiled inference for one object: small things in large stills and frames are also looked for in
    overlapping tiles at full resolution, and the boxes merged (detection/tiling.py)."""

    enabled: bool = Field(False, description="run this object's model on tiles too")
    tile_size: int = Field(
        320, ge=32, description="tile side in image pixels; best near the model's test input size"
    )
    overlap: float = Field(0.25, ge=0.0, lt=0.9, description="share of a tile its neighbour overlaps")
    merge_overlap: float = Field(
        0.6,
        gt=0.0,
        le=1.0,
        description="share of the smaller of two same-class boxes they must overlap to merge",
    )
    whole_image: bool = Field(True, description="also detect on the whole image (large objects)")


class ObjectSpec(_Strict):
    """One detectable brand object: a model per brand is trained on its label categories."""

    name: str
    categories: list[str] = Field(default_factory=list, description="label categories; default [name]")
    pooled: bool = Field(False, description="train on every brand's labels (face, smile)")
    tiling: TilingSettings = Field(default_factory=TilingSettings, description="tiled inference (off)")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _OBJECT_RE.fullmatch(v):
            raise ValueError(f"object name {v!r} must match {_OBJECT_RE.pattern}")
        return v

    @model_validator(mode="after")
    def _default_categories(self) -> ObjectSpec:
        if not self.categories:
            object.__setattr__(self, "categories", [self.name])
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"object {self.name!r} lists a category twice")
        return self


def _default_objects() -> list[ObjectSpec]:
    return [
        ObjectSpec(name="logo"),
        ObjectSpec(name="product"),
        ObjectSpec(name="brand_cue"),
        ObjectSpec(name="face", pooled=True),
        ObjectSpec(name="smile", pooled=True),
    ]


class SplitSettings(_Strict):
    """Train/valid/test fractions; the split is grouped by source creative and seeded."""

    train: float = 0.7
    valid: float = 0.15
    test: float = 0.15
    seed: int = 0

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSettings:
        for key in ("train", "valid", "test"):
            if not 0 < getattr(self, key) < 1:
                raise ValueError(f"split.{key} must be between 0 and 1")
        if abs(self.train + self.valid + self.test - 1.0) > 1e-6:
            raise ValueError("split.train + split.valid + split.test must be 1")
        return self


class GridSettings(_Strict):
    """The exhaustive hyper-parameter grid: every MAX_ITER × BATCH_SIZE_PER_IMAGE pair is one trial."""

    max_iter: list[int] = Field(description="SOLVER.MAX_ITER values")
    batch_size_per_image: list[int] = Field(description="MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE values")
    parallel_runs: int = Field(
        1, gt=0, description="grid training runs at once on the CPU, one process each (1 = sequential)"
    )
    keep_trial_checkpoints: bool = Field(
        False,
        description="keep every trial's checkpoint; by default the losing trials' checkpoints are removed "
        "once chosen_model has published the winner (their results stay, so nothing is retrained)",
    )

    @field_validator("max_iter", "batch_size_per_image")
    @classmethod
    def _positive_unique(cls, v: list[int]) -> list[int]:
        if not v or any(x <= 0 for x in v) or len(set(v)) != len(v):
            raise ValueError("must be a non-empty list of distinct positive integers")
        return sorted(v)


class AugmentSettings(_Strict):
    """Training augmentations for what real creatives do to a logo (`detection/augmentation.py`); both backends
    apply them after the resize and flip, boxes following. A probability of 0 turns one off."""

    enabled: bool = Field(True, description="apply the augmentations below (the resize and flip always run)")
    scale_jitter: list[float] = Field(
        default_factory=lambda: [0.8, 1.25],
        description="range of a random factor on the input size (after INPUT.MIN_SIZE_TRAIN's choice)",
    )
    scale_jitter_prob: float = Field(0.5, ge=0, le=1, description="share of samples that get a scale factor")
    keep_box_pixels: float = Field(
        10.0,
        ge=0,
        description="scale jitter never shrinks the image's smallest box below this size (sqrt of area, px)",
    )
    blur_prob: float = Field(0.3, ge=0, le=1, description="share of samples blurred (motion or Gaussian)")
    blur_max_kernel: int = Field(7, ge=3, description="largest blur kernel in input pixels")
    jpeg_prob: float = Field(0.3, ge=0, le=1, description="share of samples re-compressed as JPEG")
    jpeg_quality: list[int] = Field(
        default_factory=lambda: [25, 90], description="range of the re-compression's JPEG quality"
    )
    color_prob: float = Field(0.5, ge=0, le=1, description="share of samples with colour jitter")
    brightness: float = Field(0.25, ge=0, lt=1, description="brightness factor drawn from 1 ± this")
    contrast: float = Field(0.25, ge=0, lt=1, description="contrast factor drawn from 1 ± this")
    saturation: float = Field(0.3, ge=0, lt=1, description="saturation factor drawn from 1 ± this")
    cutout_prob: float = Field(0.3, ge=0, le=1, description="share of samples with occluding patches")
    cutout_max_patches: int = Field(3, ge=1, description="at most this many patches (or bars) per sample")
    cutout_max_size: float = Field(
        0.3, gt=0, le=1, description="a patch's longer side is at most this share of the image's short side"
    )
    cutout_max_box_cover: float = Field(
        0.5, ge=0, lt=1, description="a patch never hides more than this share of any box (it stays labelled)"
    )

    @field_validator("scale_jitter")
    @classmethod
    def _jitter_range(cls, v: list[float]) -> list[float]:
        if len(v) != 2 or not 0 < v[0] <= v[1]:
            raise ValueError("scale_jitter must be [low, high] with 0 < low <= high")
        return v

    @field_validator("jpeg_quality")
    @classmethod
    def _quality_range(cls, v: list[int]) -> list[int]:
        if len(v) != 2 or not 1 <= v[0] <= v[1] <= 100:
            raise ValueError("jpeg_quality must be [low, high] with 1 <= low <= high <= 100")
        return v


class TrainSettings(_Strict):
    """Detector and solver. Names follow detectron2's config keys where one exists."""

    backend: Literal["auto", "detectron2", "torchvision"] = "auto"
    architecture: Literal[
        "resnext101_32x8d", "resnet50_v2", "resnet50", "resnet18", "mobilenet_v3_large", "tiny"
    ] = "mobilenet_v3_large"
    weights: str = Field("none", description="coco | imagenet | none | a local checkpoint path")
    ims_per_batch: int = Field(2, gt=0, description="SOLVER.IMS_PER_BATCH")
    base_lr: float | None = Field(None, gt=0, description="SOLVER.BASE_LR; None = linear scaling rule")
    reference_lr: float = Field(0.02, gt=0, description="BASE_LR of the reference config")
    reference_ims_per_batch: int = Field(16, gt=0, description="IMS_PER_BATCH of the reference config")
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = Field(1000, ge=0, description="SOLVER.WARMUP_ITERS")
    warmup_factor: float = 1.0 / 1000
    steps: list[int] = Field(default_factory=list, description="SOLVER.STEPS (LR ×gamma at each)")
    gamma: float = 0.1
    min_size_train: list[int] = Field(default_factory=lambda: [640, 672, 704, 736, 768, 800])
    max_size_train: int = 1333
    min_size_test: int = 800
    max_size_test: int = 1333
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 1000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    detections_per_image: int = 100
    anchor_sizes: list[list[int]] | None = Field(
        None,
        description="MODEL.ANCHOR_GENERATOR.SIZES: anchor sizes in input pixels, one list per FPN level; None = "
        "the architecture's own. Set by the fit to the labels (`fit.anchors`) and kept in every checkpoint",
    )
    aspect_ratios: list[float] | None = Field(
        None,
        description="MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS (height / width) used on every level; None = the "
        "architecture's own (0.5, 1, 2)",
    )
    augment: AugmentSettings = Field(default_factory=AugmentSettings)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_threads: int | None = Field(
        None, gt=0, description="torch threads on the CPU; None = torch's default"
    )
    amp: bool = Field(True, description="mixed precision on CUDA")
    share_grid_prefix: bool = Field(
        True,
        description="train once per BATCH_SIZE_PER_IMAGE to the largest MAX_ITER and snapshot the smaller "
        "ones, when the LR schedule does not depend on MAX_ITER (identical to separate runs)",
    )

    def scaled_base_lr(self) -> float:
        """BASE_LR by the linear scaling rule (Goyal et al.), unless set explicitly."""
        if self.base_lr is not None:
            return self.base_lr
        return self.reference_lr * self.ims_per_batch / self.reference_ims_per_batch


class FitSettings(_Strict):
    """Fitting the detector to the train split's boxes before the grid trains (`detection/label_fit.py`)."""

    anchors: bool = Field(
        True, description="choose anchor sizes and aspect ratios from the labelled boxes (both backends)"
    )
    anchor_match_share: float = Field(
        0.98,
        gt=0,
        le=1,
        description="the architecture's anchors are kept while at least this share of the boxes has an anchor "
        "of IoU >= 0.5 (centred); below it they are re-fitted",
    )
    input_size: bool = Field(
        True, description="grow the training and test input when the small labelled boxes would be too small"
    )
    min_box_pixels: float = Field(
        12.0,
        gt=0,
        description="the size (sqrt of area, input pixels) the small boxes should keep at the smallest "
        "training input; 12 px is about 1.5 cells of the finest FPN level (stride 8) of the CPU models",
    )
    box_quantile: float = Field(
        0.05, ge=0, lt=1, description="which boxes count as 'the small ones': this quantile of the sizes"
    )
    max_short_side: int = Field(
        1600,
        gt=0,
        description="the test input's short side never grows past this (the profile's time budget)",
    )


class ThresholdSettings(_Strict):
    """The per-class score threshold sweep."""

    start: float = 0.20
    stop: float = 0.99
    step: float = 0.01

    @model_validator(mode="after")
    def _range(self) -> ThresholdSettings:
        if not (0 < self.start <= self.stop < 1) or self.step <= 0:
            raise ValueError("thresholds need 0 < start <= stop < 1 and step > 0")
        return self

    def values(self) -> list[float]:
        """The thresholds swept, rounded to avoid float drift (0.2, 0.21, …, 0.99)."""
        n = int(round((self.stop - self.start) / self.step)) + 1
        return [round(self.start + i * self.step, 6) for i in range(n)]


class DetectionSettings(_Strict):
    """Detection over every creative."""

    batch_size: int = Field(200, gt=0, description="creatives per committed batch")
    images_per_forward: int = Field(8, gt=0, description="images per forward pass")
    score_floor: float = Field(0.20, ge=0, lt=1, description="detections below are not kept")
    loader_workers: int = Field(2, ge=0, description="DataLoader workers decoding ahead")


class MediaSettings(_Strict):
    """Limits on what any stage decodes: an image's header is checked against them before its pixels."""

    max_megapixels: float = Field(
        50.0,
        gt=0,
        description="pixel budget per image (width × height / 1e6); larger JPEGs are decoded reduced, other "
        "formats become errors rows",
    )
    rehash_all: bool = Field(
        False,
        description="decode and hash every creative again; otherwise a file whose size, mtime and inode are "
        "unchanged keeps its row from the last manifest",
    )


class RemovalSettings(_Strict):
    """When creatives missing from a new manifest may be treated as removed downstream."""

    max_shrink_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        description="a manifest losing more than this fraction of its creatives fails its blocking check",
    )
    confirm: bool = Field(
        False, description="confirm a larger removal (or tag the run creative_assets/confirm_removal=true)"
    )


class LabellingSettings(_Strict):
    """The active-learning labelling queue and the task it exports for the labelling tools."""

    queue_size: int = Field(50, gt=0, description="images and frames queued per labelling round")
    max_frames_per_video: int = Field(3, gt=0, description="the most frames one video may put in a round")
    datastore_root: str = Field(
        "azureml://datastores/workspaceblobstore/paths/creative_assets/exports",
        description="the datastore folder the data root's exports/ is uploaded to; the Azure ML JSONL "
        "image URLs are <datastore_root>/<brand>/<object>/<date>/<image path>",
    )

    @field_validator("datastore_root")
    @classmethod
    def _root_ok(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v:
            raise ValueError("datastore_root must not be empty")
        return v


class AutomationSettings(_Strict):
    """What declarative automation may start by itself (read when the code location loads)."""

    train: bool = Field(
        False,
        description="let automation rebuild coco_datasets, grid_search, chosen_model and optimal_thresholds "
        "when their upstream changes; off: training runs only when launched, and shows as stale meanwhile",
    )


class Settings(_Strict):
    """Everything the pipeline needs, validated once."""

    data_root: Path
    profile: Literal["smoke", "demo", "full"] = DEFAULT_PROFILE
    objects: list[ObjectSpec] = Field(default_factory=_default_objects)
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
