"""The sections of the settings: objects, splits, the grid, training (augmentation, label fit), thresholds,
detection, media, removal, labelling and automation. Each is a strict, frozen pydantic model; `settings.Settings`
holds one of each and is what the pipeline reads (import them from `creative_assets.settings`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_OBJECT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


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


def default_objects() -> list[ObjectSpec]:
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
    images_per_forward: int = Field(
        8,
        gt=0,
        description="images per forward pass (on a CPU a large model, over 30 M parameters, gets one image per "
        "call: batching only slowed it there)",
    )
    score_floor: float = Field(0.20, ge=0, lt=1, description="detections below are not kept")
    loader_workers: int = Field(
        2,
        ge=0,
        description="DataLoader workers decoding ahead (0 for large models on a CPU: there they only took cores "
        "from the model)",
    )
    model_threads: int | None = Field(
        None,
        ge=1,
        description="on a CPU, threads running the models side by side, one torch thread each (a small "
        "detector leaves a second core idle); None = every core this process may use for small models and 1 for "
        "large ones (over 30 M parameters); 1 = one model at a time with train.cpu_threads. On a GPU the models "
        "always run one at a time",
    )


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
