"""The detectron2 detector backend: the case study's engine (`get_cfg()` + model-zoo yaml, `DefaultTrainer`).

detectron2 is not on the package index; this module is imported only where `import detectron2` works
(see `registry.py`). What it does, and where it departs from a stock `DefaultTrainer` run and why:

- Config: the model-zoo Faster R-CNN FPN yaml of the architecture (`ARCHITECTURE_CONFIGS`), with every
  hyper-parameter taken from `TrainSettings` under detectron2's own key (`build_config`). The yaml files
  are read from the installed package directly: `detectron2.model_zoo` imports `pkg_resources`, which
  setuptools ≥81 no longer ships, and only the `coco` weights need its URL table.
- `resnet18`: a small Faster R-CNN for CPU runs (smoke/demo profiles on this backend), made from the R50
  FPN yaml with detectron2's own keys: MODEL.RESNETS.DEPTH 18 (BasicBlock, RES2_OUT_CHANNELS 64), a
  64-channel FPN, anchors 16–256 px on P2–P6 for images of 100–300 px, a 256-wide box head and one RoIAlign
  sample per bin. Same heads and losses as the X101 model; about 12 M parameters instead of 60 M.
- Data: each COCO split is registered with `register_coco_instances` under a name derived from its file,
  image root and classes (`register_coco_split`, idempotent). Images without boxes stay in as negatives
  (DATALOADER.FILTER_EMPTY_ANNOTATIONS = False): presence accuracy counts them, and the torchvision backend
  trains on them too.
- LR schedule: WarmupMultiStepLR with warmup and steps in absolute iterations (`solver.py`). detectron2's
  own scheduler places them as fractions of MAX_ITER, so a 300-iteration run would not be the first 300
  iterations of a 1000-iteration run; with absolute iterations it is, which the grid's prefix sharing needs.
- Checkpoints: a hook saves the project's plain-dict checkpoint at each snapshot iteration in place of
  detectron2's PeriodicCheckpointer (whose files also carry optimizer state, doubling the disk a trial uses).
- `weights: none` trains every layer with BatchNorm (FREEZE_AT 0, RESNETS.NORM "BN"): the yaml's frozen
  stem and FrozenBN only make sense over pretrained weights.
- Inference: `Detectron2Detector.predict` resizes like `DefaultPredictor` but runs a whole list of images in
  one forward pass (fp16 autocast on CUDA); `default_predictor_loop` is the one-image-at-a-time
  `DefaultPredictor` + `cv2.imread` loop it is benchmarked against.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, build_detection_test_loader, transforms
from detectron2.data.datasets import register_coco_instances
from detectron2.engine import DefaultPredictor, DefaultTrainer, HookBase, hooks
from detectron2.evaluation import COCOEvaluator, inference_on_dataset
from detectron2.modeling import build_model
from detectron2.utils.events import CommonMetricPrinter, JSONWriter
from detectron2.utils.file_io import PathManager

from creative_assets.atomic import atomic_path
from creative_assets.detection.architectures import (
    UnknownArchitectureError,
    WeightsUnavailableError,
    load_initial_weights,
)
from creative_assets.detection.backend import (
    CocoSplit,
    Predictions,
    ProgressFn,
    TrainResult,
    TrialParams,
    as_bgr,
    autocast_on_cuda,
    training_loader_workers,
)
from creative_assets.detection.registry import resolve_device
from creative_assets.detection.solver import warmup_multistep_factor
from creative_assets.detection.torchvision_backend import checkpoint_name, seed_everything
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
        "MODEL.ANCHOR_GENERATOR.SIZES": [[16], [32], [64], [128], [256]],
        "MODEL.ROI_BOX_HEAD.FC_DIM": 256,
        "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO": 1,
    },
}
DATASET_PREFIX = "creative_assets_"


class CheckpointError(ValueError):
    """A file that is not a checkpoint this backend wrote."""


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


def fast_coco_eval_available() -> bool:
    """True when detectron2's compiled `_C` extension (its fast COCOeval) is importable."""
    try:
        return importlib.util.find_spec("detectron2._C") is not None
    except (ImportError, ValueError):
        return False


def _fetch_weights(url: str, what: str) -> None:
    """Download `url` into detectron2's cache now, so a missing network is one clear error."""
    try:
        PathManager.get_local_path(url)
    except Exception as err:  # network, HTTP and file errors all mean "not available here"
        raise WeightsUnavailableError(
            f"cannot get the {what} weights that train.weights asks for ({url}): {err}. Set train.weights "
            "to 'none' (train from scratch) or to a local checkpoint path"
        ) from err


def _read_local_weights(path: Path) -> dict[str, Any]:
    """A local train.weights file: this backend's checkpoint, a detectron2 `{"model": …}` file or a state_dict."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsUnavailableError(
            f"cannot read train.weights checkpoint {path}: {err}. Set train.weights to 'none', to a "
            "detectron2 .pkl file or to a checkpoint saved by this backend (or a plain state_dict)"
        ) from err
    if isinstance(loaded, dict) and loaded.get("format") == CHECKPOINT_FORMAT:
        return loaded
    if isinstance(loaded, dict) and isinstance(loaded.get("model"), dict):
        return {"state_dict": loaded["model"]}
    if isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return {"state_dict": loaded}
    raise WeightsUnavailableError(f"train.weights checkpoint {path} holds no state_dict")


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


def dataset_name(split: CocoSplit, categories: Sequence[tuple[int, str]]) -> str:
    """The catalog name of a split: the same file, image root and categories always give the same name."""
    key = json.dumps(
        [
            str(Path(split.json_path).resolve()),
            str(Path(split.image_root).resolve()),
            [[int(i), str(n)] for i, n in categories],
        ]
    )
    return DATASET_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]


def register_coco_split(split: CocoSplit, classes: Sequence[str]) -> str:
    """Register `split` with detectron2's catalogs (idempotent) and return its dataset name.

    The json's categories, in id order, must be `classes`: detectron2 takes its class list from them.
    """
    json_path = Path(split.json_path).resolve()
    with open(json_path, encoding="utf-8") as f:
        categories = sorted(json.load(f).get("categories", []), key=lambda c: int(c["id"]))
    names = [str(c["name"]) for c in categories]
    if names != list(classes):
        raise ValueError(
            f"{json_path}: categories {names} (in id order) are not the classes to train, {list(classes)}"
        )
    ids = [int(c["id"]) for c in categories]
    name = dataset_name(split, list(zip(ids, names, strict=True)))
    if name not in DatasetCatalog.list():
        metadata = {
            "thing_classes": list(classes),
            "thing_dataset_id_to_contiguous_id": {cat_id: i for i, cat_id in enumerate(ids)},
        }
        register_coco_instances(name, metadata, str(json_path), str(Path(split.image_root).resolve()))
    return name


def _state_dict_cpu(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_checkpoint(model: torch.nn.Module, path: Path, meta: dict[str, Any], params: TrialParams) -> None:
    """Write the plain-dict checkpoint (metadata, cfg YAML, state_dict) atomically with `torch.save`."""
    payload = {
        **meta,
        "params": {"max_iter": params.max_iter, "batch_size_per_image": params.batch_size_per_image},
        "iteration": params.max_iter,
        "state_dict": _state_dict_cpu(model),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


class _SnapshotHook(HookBase):
    """Times the steps, reports progress and saves a checkpoint after each snapshot iteration."""

    def __init__(
        self,
        snapshots: Sequence[int],
        out_dir: Path,
        meta: dict[str, Any],
        batch_size_per_image: int,
        progress: ProgressFn | None,
    ) -> None:
        self.snapshots = set(snapshots)
        self.out_dir = out_dir
        self.meta = meta
        self.batch_size_per_image = batch_size_per_image
        self.progress = progress
        self.checkpoints: dict[int, Path] = {}
        self.seconds: dict[int, float] = {}
        self.losses: list[float] = []
        self.elapsed = 0.0
        self._started = 0.0

    def before_step(self) -> None:
        self._started = time.perf_counter()

    def after_step(self) -> None:
        self.elapsed += time.perf_counter() - self._started
        trainer = self.trainer
        done = trainer.iter + 1
        latest = trainer.storage.latest()
        loss = float(latest["total_loss"][0])
        self.losses.append(loss)
        if self.progress is not None:
            info = {"loss": loss, "lr": float(latest["lr"][0])}
            info.update({k: float(v[0]) for k, v in latest.items() if k.startswith("loss_")})
            self.progress(done, trainer.max_iter, info)
        if done in self.snapshots:
            path = self.out_dir / checkpoint_name(done)
            save_checkpoint(trainer.model, path, self.meta, TrialParams(done, self.batch_size_per_image))
            self.checkpoints[done] = path
            self.seconds[done] = self.elapsed


class CreativeAssetsTrainer(DefaultTrainer):
    """`DefaultTrainer` with COCO evaluation, absolute-iteration LR steps and quiet model building."""

    @classmethod
    def build_model(cls, cfg: CfgNode) -> torch.nn.Module:
        """The model of `cfg` (without logging its whole architecture, as DefaultTrainer does)."""
        return build_model(cfg)

    @classmethod
    def build_lr_scheduler(cls, cfg: CfgNode, optimizer: torch.optim.Optimizer) -> Any:
        """WarmupMultiStepLR whose warmup and steps never depend on MAX_ITER (see module docstring)."""
        warmup_iters, warmup_factor = cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR
        steps, gamma = list(cfg.SOLVER.STEPS), cfg.SOLVER.GAMMA
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda it: warmup_multistep_factor(it, warmup_iters, warmup_factor, steps, gamma)
        )

    @classmethod
    def build_evaluator(
        cls, cfg: CfgNode, dataset_name: str, output_folder: str | None = None
    ) -> COCOEvaluator:
        """COCO box AP; pycocotools' own COCOeval where detectron2's compiled one is missing."""
        return COCOEvaluator(
            dataset_name,
            tasks=("bbox",),
            distributed=False,
            output_dir=output_folder,
            use_fast_impl=fast_coco_eval_available(),
        )

    def build_writers(self) -> list[Any]:
        """Console and metrics.json; no TensorBoard event files."""
        return [
            CommonMetricPrinter(self.max_iter),
            JSONWriter(str(Path(self.cfg.OUTPUT_DIR) / "metrics.json")),
        ]

    def build_hooks(self) -> list[HookBase]:
        """DefaultTrainer's hooks less its PeriodicCheckpointer (snapshots are taken by `_SnapshotHook`)."""
        return [h for h in super().build_hooks() if not isinstance(h, hooks.PeriodicCheckpointer)]


def _predictions(instances: Any, score_floor: float) -> Predictions:
    keep = instances.scores >= score_floor
    return Predictions(
        boxes=instances.pred_boxes.tensor[keep].float().cpu().numpy().astype(np.float32).reshape(-1, 4),
        scores=instances.scores[keep].float().cpu().numpy().astype(np.float32),
        labels=instances.pred_classes[keep].cpu().numpy().astype(np.int64),
    )


class Detectron2Detector:
    """A trained detectron2 model in eval mode; `predict` takes BGR uint8 images of any size."""

    backend = "detectron2"

    def __init__(
        self,
        model: torch.nn.Module,
        cfg: CfgNode,
        classes: list[str],
        device: str,
        amp: bool,
        meta: dict[str, Any],
    ) -> None:
        self.model = model.eval()
        self.cfg = cfg
        self.classes = list(classes)
        self.device = device
        self.amp = amp and device == "cuda"
        self.meta = meta
        # DefaultPredictor's test-time resize, with the short side fixed at MIN_SIZE_TEST
        self.resize = transforms.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )

    def model_input(self, image: np.ndarray) -> dict[str, Any]:
        """One image as the model's input dict: resized, in INPUT.FORMAT, with its original height and width."""
        image = as_bgr(image)
        if self.cfg.INPUT.FORMAT == "RGB":
            image = image[:, :, ::-1]
        height, width = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        # uint8 to the device (a quarter of DefaultPredictor's float32 bytes); the model's normalisation
        # promotes it to float there, with the same values
        tensor = torch.from_numpy(np.ascontiguousarray(resized)).to(self.device, non_blocking=True)
        return {"image": tensor.permute(2, 0, 1), "height": height, "width": width}

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        """One forward pass over the batch; boxes in input-image pixels, scores ≥ `score_floor`."""
        if len(images) == 0:
            return []
        inputs = [self.model_input(image) for image in images]
        with torch.inference_mode(), autocast_on_cuda(self.device, self.amp):
            outputs = self.model(inputs)
        return [_predictions(out["instances"], score_floor) for out in outputs]


class Detectron2Backend:
    """Trains and loads detectron2 Faster R-CNN detectors (see module docstring)."""

    name = "detectron2"
    # a snapshot at iteration k of a longer run equals a k-iteration run with the same seed
    prefix_stable = True

    def __init__(self, device: str | None = "auto", loader_workers: int | None = None) -> None:
        self.device = device
        self.loader_workers = loader_workers

    def train(
        self,
        train: CocoSplit,
        classes: list[str],
        params: TrialParams,
        settings: TrainSettings,
        out_dir: Path,
        snapshot_iters: Sequence[int] = (),
        progress: ProgressFn | None = None,
    ) -> TrainResult:
        """Train to `params.max_iter`, saving `model_<iter>.pth` at each of `snapshot_iters` and at the end."""
        if not classes:
            raise ValueError("at least one class is needed to train a detector")
        out_dir = Path(out_dir)
        device = resolve_device(self.device if self.device not in (None, "auto") else settings.device)
        cfg = build_config(
            settings, classes, params, out_dir, device, training_loader_workers(device, self.loader_workers)
        )
        local = None
        if settings.weights not in ("none", "coco", "imagenet"):
            path = Path(settings.weights)
            if not path.is_file():
                raise WeightsUnavailableError(f"train.weights file {path} does not exist")
            if path.suffix != ".pkl":
                local = _read_local_weights(path)
                if "cfg" in local:  # continue with the layers the checkpoint was trained with
                    source = config_from_yaml(local["cfg"])
                    cfg.MODEL.BACKBONE.FREEZE_AT = source.MODEL.BACKBONE.FREEZE_AT
                    cfg.MODEL.RESNETS.NORM = source.MODEL.RESNETS.NORM
        elif cfg.MODEL.WEIGHTS:
            _fetch_weights(cfg.MODEL.WEIGHTS, settings.weights)
        cfg.DATASETS.TRAIN = (register_coco_split(train, classes),)
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.freeze()

        snaps = sorted({int(k) for k in snapshot_iters if 0 < int(k) < params.max_iter} | {params.max_iter})
        seed_everything(settings.seed)
        trainer = CreativeAssetsTrainer(cfg)
        trainer.resume_or_load(resume=False)  # loads MODEL.WEIGHTS (coco / imagenet / .pkl), if any
        note = settings.weights
        if local is not None:
            counts = load_initial_weights(trainer.model, local["state_dict"])
            note = f"{settings.weights} ({counts['loaded']} tensors loaded, {counts['skipped']} initialised)"
        meta = {
            "format": CHECKPOINT_FORMAT,
            "backend": self.name,
            "architecture": settings.architecture,
            "classes": list(classes),
            "train_settings": settings.model_dump(mode="json"),
            "weights": note,
            "device": device,
            "cfg": cfg.dump(),
        }
        hook = _SnapshotHook(snaps, out_dir, meta, params.batch_size_per_image, progress)
        trainer.register_hooks([hook])
        trainer.train()
        return TrainResult(
            checkpoints=hook.checkpoints,
            seconds=hook.seconds,
            info={"losses": hook.losses, "device": device, "weights": note, "dataset": cfg.DATASETS.TRAIN[0]},
        )

    def load(self, checkpoint: Path, device: str | None = None) -> Detectron2Detector:
        """Load a checkpoint written by `train` onto `device` (default: the backend's device)."""
        device = resolve_device(device if device is not None else self.device)
        ckpt = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{checkpoint} is not a detectron2-backend checkpoint of this project")
        cfg = config_from_yaml(ckpt["cfg"])
        cfg.MODEL.DEVICE = device
        cfg.MODEL.WEIGHTS = ""
        cfg.freeze()
        model = build_model(cfg)
        model.load_state_dict(ckpt["state_dict"])
        meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
        amp = bool(ckpt.get("train_settings", {}).get("amp", True))
        return Detectron2Detector(model, cfg, list(ckpt["classes"]), device, amp, meta)

    def evaluate(self, detector: Detectron2Detector, split: CocoSplit) -> dict[str, float]:
        """COCO box metrics of `detector` on `split` from detectron2's `COCOEvaluator` (AP, AP50, … in %)."""
        name = register_coco_split(split, detector.classes)
        evaluator = CreativeAssetsTrainer.build_evaluator(detector.cfg, name)
        loader = build_detection_test_loader(detector.cfg, name)
        results = inference_on_dataset(detector.model, loader, evaluator)
        return {k: float(v) for k, v in results.get("bbox", {}).items()}


def default_predictor_loop(
    cfg_or_checkpoint: CfgNode | Path | str,
    images: Sequence[str | Path | np.ndarray],
    score_floor: float = 0.0,
    device: str | None = None,
) -> list[Predictions]:
    """The case study's inference: `DefaultPredictor` and `cv2.imread`, one image at a time.

    `cfg_or_checkpoint` is a detectron2 config whose MODEL.WEIGHTS `DefaultPredictor` can load, or a
    checkpoint this backend wrote; `images` are file paths (read with `cv2.imread`) or BGR arrays.
    """
    state = None
    if isinstance(cfg_or_checkpoint, CfgNode):
        cfg = cfg_or_checkpoint.clone()
    else:
        ckpt = torch.load(Path(cfg_or_checkpoint), map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"{cfg_or_checkpoint} is not a detectron2-backend checkpoint of this project"
            )
        cfg = config_from_yaml(ckpt["cfg"])
        cfg.MODEL.WEIGHTS = ""
        state = ckpt["state_dict"]
    cfg.defrost()
    cfg.MODEL.DEVICE = resolve_device(device if device is not None else cfg.MODEL.DEVICE)
    cfg.freeze()
    predictor = DefaultPredictor(cfg)
    if state is not None:
        predictor.model.load_state_dict(state)
    results = []
    for item in images:
        image = item if isinstance(item, np.ndarray) else cv2.imread(str(item))
        if image is None:
            raise ValueError(f"cannot read image {item}")
        results.append(_predictions(predictor(image)["instances"], score_floor))
    return results
