"""detectron2 config of a training run: the model-zoo yaml of the architecture plus our settings under
detectron2's own keys, and the checkpoint format that carries it (see the package docstring)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detectron2.config import CfgNode, get_cfg
from detectron2.utils.file_io import PathManager

from creative_assets.detection.architectures import UnknownArchitectureError, WeightsUnavailableError
from creative_assets.detection.backend import TrialParams
from creative_assets.detection.label_fit import DEFAULT_ANCHORS, anchors_of, check_anchor_layout
from creative_assets.settings import TrainSettings

CHECKPOINT_FORMAT = "creative_assets.detectron2/1"

# train.architecture → model-zoo config; the case study trained X101-32x8d FPN 3x.
ARCHITECTURE_CONFIGS = {
    "resnext101_32x8d": "COCO-Detection/faster_rcnn_X_101_32x8d_FPN_3x.yaml",
    "resnet50": "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    "resnet50_v2": "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    "resnet18": "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
}
# Architectures that are a zoo yaml plus these keys (see module docstring); no published weights.
ARCHITECTURE_OVERRIDES: dict[str, dict[str, Any]] = {
    "resnet18": {
        "MODEL.RESNETS.DEPTH": 18,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
        "MODEL.FPN.OUT_CHANNELS": 64,
        "MODEL.ANCHOR_GENERATOR.SIZES": [list(level) for level in DEFAULT_ANCHORS["resnet18"]],
        "MODEL.ROI_BOX_HEAD.FC_DIM": 256,
        "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": 1,
    },
}


def config_file_for(architecture: str) -> str:
    """The model-zoo yaml (relative to detectron2's `configs/`) of `architecture`."""
    try:
        return ARCHITECTURE_CONFIGS[architecture]
    except KeyError:
        raise UnknownArchitectureError(
            f"train.architecture {architecture!r} has no detectron2 model-zoo config; the detectron2 backend "
            f"supports {', '.join(ARCHITECTURE_CONFIGS)} (use train.backend 'torchvision' for the others)"
        ) from None


def zoo_config_path(config_file: str) -> Path:
    """The installed model-zoo yaml `config_file` (relative to detectron2's `configs/`)."""
    spec = importlib.util.find_spec("detectron2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "model_zoo" / "configs" / config_file
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"detectron2's model-zoo config {config_file} is not installed; reinstall detectron2 (see README)"
    )


def _coco_checkpoint_url(config_file: str) -> str:
    """The COCO-trained weights of a zoo config (detectron2's URL table; needs setuptools<81)."""
    try:
        from detectron2 import model_zoo
    except ImportError as err:
        raise WeightsUnavailableError(
            f"cannot look up detectron2's COCO weights ({err}); install 'setuptools<81' (detectron2's "
            "model_zoo imports pkg_resources), or set train.weights to 'none' or a local checkpoint"
        ) from err
    return model_zoo.get_checkpoint_url(config_file)


def fetch_weights(url: str, what: str) -> None:
    """Download `url` into detectron2's cache now, so a missing network is one clear error."""
    try:
        PathManager.get_local_path(url)
    except Exception as err:  # network, HTTP and file errors all mean "not available here"
        raise WeightsUnavailableError(
            f"cannot get the {what} weights that train.weights asks for ({url}): {err}. Set train.weights "
            "to 'none' (train from scratch) or to a local checkpoint path"
        ) from err


def config_from_yaml(text: str) -> CfgNode:
    """A full detectron2 config from a dumped YAML string (e.g. the one a checkpoint carries)."""
    cfg = get_cfg()
    cfg.merge_from_other_cfg(CfgNode.load_cfg(text))
    return cfg


def build_config(
    settings: TrainSettings,
    classes: Sequence[str],
    params: TrialParams,
    out_dir: Path,
    device: str = "cpu",
    loader_workers: int = 0,
) -> CfgNode:
    """The detectron2 config of one training run; MODEL.WEIGHTS stays "" for local checkpoints (see `train`)."""
    zoo_file = config_file_for(settings.architecture)
    cfg = get_cfg()
    cfg.merge_from_file(str(zoo_config_path(zoo_file)))
    imagenet_url = cfg.MODEL.WEIGHTS
    overrides = ARCHITECTURE_OVERRIDES.get(settings.architecture, {})
    if overrides:
        cfg.merge_from_list([x for key, value in overrides.items() for x in (key, value)])
        if settings.weights in ("coco", "imagenet"):
            raise WeightsUnavailableError(
                f"detectron2 publishes no {settings.weights} weights for {settings.architecture}; set "
                "train.weights to 'none' (train from scratch) or to a local checkpoint path"
            )

    cfg.MODEL.DEVICE = device
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(classes)
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = params.batch_size_per_image
    # Predict keeps everything and applies the caller's floor; COCO AP needs the low-scoring detections.
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = settings.rpn_pre_nms_top_n_train
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = settings.rpn_post_nms_top_n_train
    cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = settings.rpn_pre_nms_top_n_test
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = settings.rpn_post_nms_top_n_test
    cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE = settings.rpn_batch_size_per_image
    cfg.TEST.DETECTIONS_PER_IMAGE = settings.detections_per_image
    if settings.anchor_sizes is not None or settings.aspect_ratios is not None:
        # one size list per FPN level (P2–P6), the same ratios on every level; the checkpoint's cfg keeps them
        check_anchor_layout(settings)
        sizes, ratios = anchors_of(settings)
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [list(level) for level in sizes]
        cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [list(ratios)]

    cfg.SOLVER.IMS_PER_BATCH = settings.ims_per_batch
    cfg.SOLVER.BASE_LR = settings.scaled_base_lr()
    cfg.SOLVER.MAX_ITER = params.max_iter
    cfg.SOLVER.MOMENTUM = settings.momentum
    cfg.SOLVER.WEIGHT_DECAY = settings.weight_decay
    cfg.SOLVER.WARMUP_ITERS = settings.warmup_iters
    cfg.SOLVER.WARMUP_FACTOR = settings.warmup_factor
    cfg.SOLVER.STEPS = tuple(settings.steps)
    cfg.SOLVER.GAMMA = settings.gamma
    cfg.SOLVER.AMP.ENABLED = bool(settings.amp and device == "cuda")
    # Snapshots come from the snapshot hook; the period only records that nothing else is saved on the way.
    cfg.SOLVER.CHECKPOINT_PERIOD = params.max_iter

    cfg.INPUT.MIN_SIZE_TRAIN = tuple(settings.min_size_train)
    cfg.INPUT.MAX_SIZE_TRAIN = settings.max_size_train
    cfg.INPUT.MIN_SIZE_TEST = settings.min_size_test
    cfg.INPUT.MAX_SIZE_TEST = settings.max_size_test

    cfg.DATASETS.TRAIN = ()
    cfg.DATASETS.TEST = ()
    cfg.DATALOADER.NUM_WORKERS = loader_workers
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = False
    cfg.TEST.EVAL_PERIOD = 0
    cfg.SEED = settings.seed
    cfg.OUTPUT_DIR = str(out_dir)

    weights = settings.weights
    if weights == "none":
        cfg.MODEL.WEIGHTS = ""
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
        cfg.MODEL.RESNETS.NORM = "BN"
    elif weights == "coco":
        cfg.MODEL.WEIGHTS = _coco_checkpoint_url(zoo_file)
    elif weights == "imagenet":
        cfg.MODEL.WEIGHTS = imagenet_url
    elif Path(weights).suffix == ".pkl":
        cfg.MODEL.WEIGHTS = str(weights)  # detectron2's own model-zoo format; its checkpointer reads it
    else:
        cfg.MODEL.WEIGHTS = ""
    return cfg
