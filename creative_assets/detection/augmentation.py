"""Training augmentation shared by both backends: resize and flip as detectron2 does, then what real creatives do
to a logo — scale, blur, JPEG re-compression, colour shifts and occluding patches.

Why these: in marketing creatives logos are often small, motion-blurred in video frames, re-encoded at low JPEG
quality by ad servers and half covered by text bars or products. A detector trained on clean samples only
misses them (issue "small, blurred, half-hidden logos").

Order: ResizeShortestEdge (short side drawn from INPUT.MIN_SIZE_TRAIN, times a scale-jitter factor) → horizontal
flip → colour jitter → cutout → blur → JPEG. Only the first two move pixels, and boxes follow them exactly;
the others leave the boxes as they are (a half-hidden logo is still labelled). The photometric steps run
after the resize, on the small input, so they cost little, and their sizes (blur kernel) are in input pixels.

Scale jitter keeps small boxes: its factor is never below what keeps the image's smallest box at
`keep_box_pixels`. Cutout patches are drawn until one covers at most `cutout_max_box_cover` of every box
(a few tries, else that patch is skipped), so no labelled object is wiped out.

Every random draw comes from the `rng` passed in, so a sample depends only on its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from creative_assets.settings import AugmentSettings

_CUTOUT_TRIES = 10


def resize_shortest_edge_shape(
    height: int, width: int, short_edge: float, max_size: float
) -> tuple[int, int]:
    """Output (height, width) of detectron2's ResizeShortestEdge for one short-edge length."""
    scale = short_edge / min(height, width)
    if height < width:
        new_h, new_w = float(short_edge), scale * width
    else:
        new_h, new_w = scale * height, float(short_edge)
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


def hflip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Boxes (x_min, y_min, x_max, y_max) mirrored in an image `width` pixels wide."""
    out = boxes.copy()
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def jitter_factor(
    rng: np.random.Generator, boxes: np.ndarray, scale: float, settings: AugmentSettings
) -> float:
    """A random factor on the input size from `settings.scale_jitter`, raised where it would shrink the
    smallest box (after the base resize by `scale`) below `settings.keep_box_pixels`."""
    low, high = settings.scale_jitter
    if len(boxes):
        sides = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) * scale
        smallest = float(sides.min())
        if smallest > 0:
            low = min(max(low, settings.keep_box_pixels / smallest), max(high, 1.0))
    high = max(high, low)
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def color_jitter(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor drawn from 1 ± its setting."""
    out = image.astype(np.float32)
    b = rng.uniform(1 - settings.brightness, 1 + settings.brightness)
    c = rng.uniform(1 - settings.contrast, 1 + settings.contrast)
    s = rng.uniform(1 - settings.saturation, 1 + settings.saturation)
    out *= b
    out = (out - out.mean()) * c + out.mean()
    grey = out.mean(axis=2, keepdims=True)
    out = (out - grey) * s + grey
    return np.clip(out, 0, 255).astype(np.uint8)


def _box_cover(patch: tuple[int, int, int, int], boxes: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = patch
    iw = np.clip(np.minimum(boxes[:, 2], x1) - np.maximum(boxes[:, 0], x0), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], y1) - np.maximum(boxes[:, 1], y0), 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    return iw * ih / area


def cutout(
    image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, settings: AugmentSettings
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Up to `cutout_max_patches` flat-coloured patches or bars, none covering more than
    `cutout_max_box_cover` of any box; the image and the patches drawn (x0, y0, x1, y1)."""
    height, width = image.shape[:2]
    longest = max(2, int(settings.cutout_max_size * min(height, width)))
    out = image.copy()
    drawn = []
    for _ in range(int(rng.integers(1, settings.cutout_max_patches + 1))):
        for _ in range(_CUTOUT_TRIES):
            w = int(rng.integers(2, longest + 1))
            # half the patches are bars: long and thin, like captions and price tags
            h = int(rng.integers(2, longest + 1)) if rng.random() < 0.5 else max(2, w // 4)
            if rng.random() < 0.5:
                w, h = h, w
            x0, y0 = int(rng.integers(0, max(1, width - w))), int(rng.integers(0, max(1, height - h)))
            patch = (x0, y0, min(width, x0 + w), min(height, y0 + h))
            if not len(boxes) or _box_cover(patch, boxes).max() <= settings.cutout_max_box_cover:
                out[patch[1] : patch[3], patch[0] : patch[2]] = rng.integers(0, 256, size=3, dtype=np.uint8)
                drawn.append(patch)
                break
    return out, drawn


def blur(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """A motion blur along a random direction or a Gaussian blur, kernel 3…`blur_max_kernel` px."""
    k = int(rng.integers(3, settings.blur_max_kernel + 1)) | 1
    if rng.random() < 0.5:
        return cv2.GaussianBlur(image, (k, k), 0)
    kernel = np.zeros((k, k), dtype=np.float32)
    kernel[k // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (k, k))
    return cv2.filter2D(image, -1, kernel / max(float(kernel.sum()), 1e-6))


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """The image encoded as JPEG at `quality` and decoded again."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def augment(
    image: np.ndarray,
    boxes: np.ndarray,
    rng: np.random.Generator,
    min_sizes: Sequence[int],
    max_size: int,
    settings: AugmentSettings | None = None,
    flip_prob: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """One training sample: BGR uint8 image and (N, 4) xyxy boxes in, the augmented pair out (module docstring).

    Without `settings` (or with `settings.enabled` false) only the resize and the flip run, as detectron2's
    default training augmentation does.
    """
    height, width = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    short = float(min_sizes[int(rng.integers(len(min_sizes)))])
    limit = float(max_size)
    active = settings is not None and settings.enabled
    if active and rng.random() < settings.scale_jitter_prob:
        base_h, _ = resize_shortest_edge_shape(height, width, short, limit)
        factor = jitter_factor(rng, boxes, base_h / height, settings)
        short, limit = short * factor, limit * factor
    new_h, new_w = resize_shortest_edge_shape(height, width, short, limit)
    if (new_h, new_w) != (height, width):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        boxes = boxes * np.array([new_w / width, new_h / height] * 2, dtype=np.float32)
    if rng.random() < flip_prob:
        image = image[:, ::-1]
        boxes = hflip_boxes(boxes, new_w)
    image = np.ascontiguousarray(image)
    if active:
        if rng.random() < settings.color_prob:
            image = color_jitter(image, rng, settings)
        if rng.random() < settings.cutout_prob:
            image, _ = cutout(image, boxes, rng, settings)
        if rng.random() < settings.blur_prob:
            image = blur(image, rng, settings)
        if rng.random() < settings.jpeg_prob:
            low, high = settings.jpeg_quality
            image = jpeg_recompress(image, int(rng.integers(low, high + 1)))
    return np.ascontiguousarray(image), boxes.astype(np.float32)
