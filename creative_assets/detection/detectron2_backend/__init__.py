"""The detectron2 detector backend: the case study's engine (`get_cfg()` + model-zoo yaml, `DefaultTrainer`).

detectron2 is not on the package index; this package is imported only where `import detectron2` works
(see `registry.py`, the only module that imports a backend). Its modules follow detectron2's own split:
`config` (model-zoo yaml + settings), `data` (dataset catalog), `engine` (trainer and hooks), `predictor`
(batched inference and the `DefaultPredictor` loop); this file holds the backend that ties them together. What it does, and where it departs from a stock `DefaultTrainer` run and why:

- Config: the model-zoo Faster R-CNN FPN yaml of the architecture (`ARCHITECTURE_CONFIGS`), with every
  hyper-parameter taken from `TrainSettings` under detectron2's own key (`build_config`). The yaml files
  are read from the installed package directly: `detectron2.model_zoo` imports `pkg_resources`, which
  setuptools ≥81 no longer ships, and only the `coco` weights need its URL table.
- `resnet18`: a small Faster R-CNN for CPU runs (smoke/demo profiles on this backend), made from the R50
  FPN yaml with detectron2's own keys: MODEL.RESNETS.DEPTH 18 (BasicBlock, RES2_OUT_CHANNELS 64), a
  64-channel FPN, anchors 16–256 px on P2–P6 for images of 100–300 px, a 256-wide box head and one RoIAlign
  sample per bin. Same heads and losses as the X101 model; about 12 M parameters instead of 60 M.
- Augmentation: the training loader maps each record through `augmentation.augment` (`AugmentingMapper`), the
  same resize, flip and `train.augment` steps the torchvision backend trains with, in place of
  detectron2's DatasetMapper.
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

from pathlib import Path

from detectron2.data import build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.modeling import build_model

from creative_assets.detection.architectures import WeightsUnavailableError, load_initial_weights
from creative_assets.detection.backend import CocoSplit, DetectorBackend, TrainJob, TrainResult
from creative_assets.detection.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    read_checkpoint,
    read_initial_weights,
    training_meta,
)
from creative_assets.detection.detectron2_backend.config import (
    ARCHITECTURE_CONFIGS,
    ARCHITECTURE_OVERRIDES,
    CHECKPOINT_FORMAT,
    build_config,
    config_file_for,
    config_from_yaml,
    fetch_weights,
    zoo_config_path,
)
from creative_assets.detection.detectron2_backend.data import dataset_name, register_coco_split
from creative_assets.detection.detectron2_backend.engine import (
    CreativeAssetsTrainer,
    SnapshotHook,
    fast_coco_eval_available,
    trainer_for,
)
from creative_assets.detection.detectron2_backend.predictor import Detectron2Detector, default_predictor_loop
from creative_assets.detection.runtime import resolve_device, seed_everything, training_loader_workers

__all__ = [
    "ARCHITECTURE_CONFIGS", "ARCHITECTURE_OVERRIDES", "CHECKPOINT_FORMAT", "CheckpointError",
    "CreativeAssetsTrainer", "Detectron2Backend", "Detectron2Detector", "build_config", "config_file_for",
    "dataset_name", "default_predictor_loop", "fast_coco_eval_available", "register_coco_split",
    "zoo_config_path",
]  # fmt: skip


class Detectron2Backend(DetectorBackend):
    """Trains and loads detectron2 Faster R-CNN detectors (see module docstring)."""

    name = "detectron2"
    # a snapshot at iteration k of a longer run equals a k-iteration run with the same seed
    prefix_stable = True

    def __init__(self, device: str | None = "auto", loader_workers: int | None = None) -> None:
        self.device = device
        self.loader_workers = loader_workers

    def fit(self, job: TrainJob) -> TrainResult:
        """Train to `params.max_iter` with detectron2's trainer (see `DetectorBackend.train`)."""
        train, classes, params, settings = job.split, job.classes, job.params, job.settings
        device, out_dir, progress = job.device, job.out_dir, job.progress
        snaps = list(job.snapshots)
        cfg = build_config(
            settings, classes, params, out_dir, device, training_loader_workers(device, self.loader_workers)
        )
        local = None
        if settings.weights not in ("none", "coco", "imagenet"):
            path = Path(settings.weights)
            if not path.is_file():
                raise WeightsUnavailableError(f"train.weights file {path} does not exist")
            if path.suffix != ".pkl":
                local = read_initial_weights(path)
                if "cfg" in local:  # continue with the layers the checkpoint was trained with
                    source = config_from_yaml(local["cfg"])
                    cfg.MODEL.BACKBONE.FREEZE_AT = source.MODEL.BACKBONE.FREEZE_AT
                    cfg.MODEL.RESNETS.NORM = source.MODEL.RESNETS.NORM
        elif cfg.MODEL.WEIGHTS:
            fetch_weights(cfg.MODEL.WEIGHTS, settings.weights)
        cfg.DATASETS.TRAIN = (register_coco_split(train, classes),)
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg.freeze()

        seed_everything(settings.seed)
        trainer = trainer_for(settings)(cfg)
        trainer.resume_or_load(resume=False)  # loads MODEL.WEIGHTS (coco / imagenet / .pkl), if any
        note = settings.weights
        if local is not None:
            counts = load_initial_weights(trainer.model, local["state_dict"])
            note = f"{settings.weights} ({counts['loaded']} tensors loaded, {counts['skipped']} initialised)"
        meta = training_meta(CHECKPOINT_FORMAT, self.name, settings, classes, note, device)
        meta["cfg"] = cfg.dump()
        hook = SnapshotHook(snaps, out_dir, meta, params.batch_size_per_image, progress)
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
        ckpt = read_checkpoint(Path(checkpoint), CHECKPOINT_FORMAT, self.name)
        cfg = config_from_yaml(ckpt["cfg"])
        cfg.MODEL.DEVICE = device
        cfg.MODEL.WEIGHTS = ""
        cfg.freeze()
        model = build_model(cfg)
        model.load_state_dict(ckpt["state_dict"])
        meta = checkpoint_meta(ckpt)
        amp = bool(ckpt.get("train_settings", {}).get("amp", True))
        return Detectron2Detector(model, cfg, list(ckpt["classes"]), device, amp, meta)

    def evaluate(self, detector: Detectron2Detector, split: CocoSplit) -> dict[str, float]:
        """COCO box metrics of `detector` on `split` from detectron2's `COCOEvaluator` (AP, AP50, … in %)."""
        name = register_coco_split(split, detector.classes)
        evaluator = CreativeAssetsTrainer.build_evaluator(detector.cfg, name)
        loader = build_detection_test_loader(detector.cfg, name)
        results = inference_on_dataset(detector.model, loader, evaluator)
        return {k: float(v) for k, v in results.get("bbox", {}).items()}
