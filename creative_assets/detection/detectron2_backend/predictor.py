"""Inference: a trained model over whole batches (`Detectron2Detector`), and the case study's one-image-at-a-time
`DefaultPredictor` loop it is benchmarked and tested against."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import transforms
from detectron2.engine import DefaultPredictor

from creative_assets.detection.backend import Predictions, as_bgr
from creative_assets.detection.checkpoint import read_checkpoint
from creative_assets.detection.detectron2_backend.config import CHECKPOINT_FORMAT, config_from_yaml
from creative_assets.detection.runtime import autocast_on_cuda, resolve_device


def _predictions(instances: Any, score_floor: float) -> Predictions:
    return Predictions.from_tensors(
        instances.pred_boxes.tensor, instances.scores, instances.pred_classes, score_floor
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
        self.parameter_count = sum(p.numel() for p in model.parameters())
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
        ckpt = read_checkpoint(Path(cfg_or_checkpoint), CHECKPOINT_FORMAT, "detectron2")
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
