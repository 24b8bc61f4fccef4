"""Faster R-CNN + FPN model builders (torchvision) and the mapping from detectron2 hyper-parameter names.

Architectures:
- `resnext101_32x8d`: ResNeXt-101 32x8d FPN, the case study's X101-32x8d (a GPU model).
- `resnet50_v2`: torchvision's improved R50-FPN (`fasterrcnn_resnet50_fpn_v2`).
- `resnet50`: the classic R50-FPN (`fasterrcnn_resnet50_fpn`).
- `mobilenet_v3_large`: MobileNetV3-Large FPN (`fasterrcnn_mobilenet_v3_large_fpn`), the CPU option.
- `tiny`: a small CNN of our own (four stages, 16→128 channels, BatchNorm, FPN on strides 8/16/32) with
  anchors and RoI heads sized for images of 100–300 px; trains from scratch on a CPU in minutes.

Hyper-parameters map as detectron2 names them: ROI_HEADS.BATCH_SIZE_PER_IMAGE → box_batch_size_per_image,
RPN.BATCH_SIZE_PER_IMAGE → rpn_batch_size_per_image, RPN.PRE/POST_NMS_TOPK_TRAIN/TEST →
rpn_pre/post_nms_top_n_train/test, INPUT.MIN_SIZE_TEST/MAX_SIZE_TEST → min_size/max_size,
TEST.DETECTIONS_PER_IMAGE → box_detections_per_img. The box score threshold is 0: `Detector.predict`
applies the caller's score floor, and COCO AP needs the low-scoring detections.

Anchors: `train.anchor_sizes` / `train.aspect_ratios` (chosen from the labels by `label_fit.py`) replace the
architecture's anchor generator; they keep its number of anchors per location, so the weights' shapes do not
change, and a checkpoint's train settings carry them back at load time.

Training images arrive already resized by the data loader (detectron2's ResizeShortestEdge in
`coco_data.py`), so the model only resizes at test time (`_TestResizeTransform`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    ResNet50_Weights,
    ResNeXt101_32X8D_Weights,
)
from torchvision.models.detection import (
    FasterRCNN,
    FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    FasterRCNN_ResNet50_FPN_V2_Weights,
    FasterRCNN_ResNet50_FPN_Weights,
    fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_resnet50_fpn,
    fasterrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops import misc as misc_nn_ops

from creative_assets.detection.label_fit import DEFAULT_ANCHORS, anchors_of, check_anchor_layout
from creative_assets.settings import TrainSettings

ARCHITECTURES = ("resnext101_32x8d", "resnet50_v2", "resnet50", "mobilenet_v3_large", "tiny")
PRETRAINED_CHOICES = ("none", "coco", "imagenet")

# torchvision publishes COCO detection weights for these; ImageNet classification weights for the backbones.
_COCO_WEIGHTS = {
    "resnet50_v2": FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
    "resnet50": FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
    "mobilenet_v3_large": FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1,
}
_IMAGENET_WEIGHTS = {
    "resnext101_32x8d": ResNeXt101_32X8D_Weights.IMAGENET1K_V2,
    "resnet50_v2": ResNet50_Weights.IMAGENET1K_V1,
    "resnet50": ResNet50_Weights.IMAGENET1K_V1,
    "mobilenet_v3_large": MobileNet_V3_Large_Weights.IMAGENET1K_V1,
}

# tiny: widths of the four stages (strides 4, 8, 16, 32) and of the FPN outputs.
TINY_WIDTHS = (16, 32, 64, 128)
TINY_FPN_CHANNELS = 64
TINY_ANCHOR_SIZES = DEFAULT_ANCHORS["tiny"]
TINY_ASPECT_RATIOS = (0.5, 1.0, 2.0)
TINY_ROI_OUTPUT = 7
# one bilinear sample per RoI bin: with 2×2, RoIAlign's backward pass took a third of a CPU training step
TINY_SAMPLING_RATIO = 1
TINY_REPRESENTATION = 128


class UnknownArchitectureError(ValueError):
    """An architecture name this backend cannot build."""


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights that cannot be had (no network, none published, unreadable file)."""


def check_architecture(name: str) -> str:
    """Return `name` if it is a known architecture, else raise UnknownArchitectureError."""
    if name not in ARCHITECTURES:
        raise UnknownArchitectureError(
            f"unknown architecture {name!r} (train.architecture); known: {', '.join(ARCHITECTURES)}"
        )
    return name


class _TestResizeTransform(GeneralizedRCNNTransform):
    """Normalise and batch; resize to MIN_SIZE_TEST/MAX_SIZE_TEST in eval mode only.

    In training the loader has already applied ResizeShortestEdge, so resizing again would undo it.
    """

    def resize(
        self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        if self.training:
            return image, target
        return super().resize(image, target)


def faster_rcnn_kwargs(settings: TrainSettings, batch_size_per_image: int) -> dict[str, Any]:
    """torchvision FasterRCNN keyword arguments for detectron2-named hyper-parameters."""
    return {
        "min_size": settings.min_size_test,
        "max_size": settings.max_size_test,
        "rpn_pre_nms_top_n_train": settings.rpn_pre_nms_top_n_train,
        "rpn_post_nms_top_n_train": settings.rpn_post_nms_top_n_train,
        "rpn_pre_nms_top_n_test": settings.rpn_pre_nms_top_n_test,
        "rpn_post_nms_top_n_test": settings.rpn_post_nms_top_n_test,
        "rpn_batch_size_per_image": settings.rpn_batch_size_per_image,
        "box_batch_size_per_image": batch_size_per_image,
        "box_detections_per_img": settings.detections_per_image,
        "box_score_thresh": 0.0,
    }


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TinyBackbone(nn.Module):
    """Four plain conv stages (strides 4/8/16/32) and an FPN over the last three; `out_channels` per level."""

    def __init__(self, widths: tuple[int, ...] = TINY_WIDTHS, fpn_channels: int = TINY_FPN_CHANNELS) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(3, widths[0], 2)
        stages = []
        c_in = widths[0]
        for width in widths:
            stages.append(nn.Sequential(_conv_bn_relu(c_in, width, 2), _conv_bn_relu(width, width, 1)))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(list(widths[1:]), fpn_channels)
        self.out_channels = fpn_channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m not in set(self.fpn.modules()):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(x)
        feats = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 1:
                feats[str(i - 1)] = x
        return self.fpn(feats)


def _build_tiny(num_classes: int, kwargs: dict[str, Any]) -> FasterRCNN:
    backbone = TinyBackbone()
    anchors = AnchorGenerator(TINY_ANCHOR_SIZES, (TINY_ASPECT_RATIOS,) * len(TINY_ANCHOR_SIZES))
    rpn_head = RPNHead(backbone.out_channels, anchors.num_anchors_per_location()[0])
    roi_pool = MultiScaleRoIAlign(
        featmap_names=[str(i) for i in range(len(TINY_ANCHOR_SIZES))],
        output_size=TINY_ROI_OUTPUT,
        sampling_ratio=TINY_SAMPLING_RATIO,
    )
    box_head = TwoMLPHead(backbone.out_channels * TINY_ROI_OUTPUT**2, TINY_REPRESENTATION)
    return FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        rpn_head=rpn_head,
        box_roi_pool=roi_pool,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(TINY_REPRESENTATION, num_classes),
        **kwargs,
    )


def _build_resnext101(num_classes: int, imagenet: Any, kwargs: dict[str, Any]) -> FasterRCNN:
    # detectron2's X101-32x8d FPN freezes the stem and res2 under FrozenBN when pretrained (FREEZE_AT=2).
    pretrained = imagenet is not None
    backbone = resnet_fpn_backbone(
        backbone_name="resnext101_32x8d",
        weights=imagenet,
        norm_layer=misc_nn_ops.FrozenBatchNorm2d if pretrained else nn.BatchNorm2d,
        trainable_layers=3 if pretrained else 5,
    )
    return FasterRCNN(backbone, num_classes=num_classes, **kwargs)


_TORCHVISION_BUILDERS = {
    "resnet50_v2": fasterrcnn_resnet50_fpn_v2,
    "resnet50": fasterrcnn_resnet50_fpn,
    "mobilenet_v3_large": fasterrcnn_mobilenet_v3_large_fpn,
}


def _fetch(weights: Any, architecture: str, what: str) -> None:
    """Download `weights` into torch's cache now, so a missing network is one clear error."""
    try:
        weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # urllib, socket, hash and file errors all mean "not available"
        raise WeightsUnavailableError(
            f"cannot get {what} weights for {architecture} ({weights.url}): {err}. "
            "Set train.weights to 'none' (train from scratch) or to a local checkpoint path."
        ) from err


def _replace_predictor(model: FasterRCNN, num_classes: int) -> None:
    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)


def build_model(
    architecture: str,
    num_classes: int,
    settings: TrainSettings,
    batch_size_per_image: int,
    pretrained: str = "none",
) -> tuple[FasterRCNN, str]:
    """A Faster R-CNN for `num_classes` foreground classes and a note on the weights it starts from.

    `pretrained` is `none`, `coco` (COCO detection weights, box predictor re-initialised for our classes) or
    `imagenet` (backbone only). torchvision publishes no COCO detector for ResNeXt-101, so `coco` there
    starts from the ImageNet backbone, and the note says so.
    """
    check_architecture(architecture)
    if pretrained not in PRETRAINED_CHOICES:
        raise ValueError(f"pretrained must be one of {PRETRAINED_CHOICES}, got {pretrained!r}")
    n_out = num_classes + 1  # torchvision counts the background class
    kwargs = faster_rcnn_kwargs(settings, batch_size_per_image)
    note = pretrained
    if architecture == "tiny":
        if pretrained != "none":
            raise WeightsUnavailableError(
                f"the tiny architecture has no {pretrained} weights; set train.weights to 'none' or to a "
                "local checkpoint path"
            )
        model = _build_tiny(n_out, kwargs)
    elif architecture == "resnext101_32x8d":
        imagenet = None
        if pretrained in ("coco", "imagenet"):
            imagenet = _IMAGENET_WEIGHTS[architecture]
            _fetch(imagenet, architecture, "ImageNet")
            if pretrained == "coco":
                note = "imagenet (torchvision publishes no COCO detector for resnext101_32x8d)"
        model = _build_resnext101(n_out, imagenet, kwargs)
    else:
        builder = _TORCHVISION_BUILDERS[architecture]
        if pretrained == "coco":
            coco = _COCO_WEIGHTS[architecture]
            _fetch(coco, architecture, "COCO")
            model = builder(weights=coco, weights_backbone=None, **kwargs)
            _replace_predictor(model, n_out)
        elif pretrained == "imagenet":
            imagenet = _IMAGENET_WEIGHTS[architecture]
            _fetch(imagenet, architecture, "ImageNet")
            model = builder(weights=None, weights_backbone=imagenet, num_classes=n_out, **kwargs)
        else:
            model = builder(weights=None, weights_backbone=None, num_classes=n_out, **kwargs)
    if settings.anchor_sizes is not None or settings.aspect_ratios is not None:
        # fitted anchors keep the count per location, so the RPN head is unchanged (label_fit.py)
        check_anchor_layout(settings)
        sizes, ratios = anchors_of(settings)
        model.rpn.anchor_generator = AnchorGenerator(sizes, (ratios,) * len(sizes))
    t = model.transform
    model.transform = _TestResizeTransform(
        t.min_size, t.max_size, t.image_mean, t.image_std, size_divisible=t.size_divisible
    )
    return model, note


def load_initial_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, int]:
    """Copy every tensor whose name and shape match (a different class count skips the predictor).

    Returns counts {"loaded": n, "skipped": m}; WeightsUnavailableError if nothing matched.
    """
    own = model.state_dict()
    matched = {k: v for k, v in state_dict.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    if not matched:
        raise WeightsUnavailableError(
            "the checkpoint in train.weights shares no parameter with this architecture; "
            "check train.architecture or set train.weights to 'none'"
        )
    model.load_state_dict(matched, strict=False)
    return {"loaded": len(matched), "skipped": len(own) - len(matched)}
