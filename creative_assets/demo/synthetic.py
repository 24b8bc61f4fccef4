"""Deterministic synthetic demo data: creatives, labels in the three supported forms, and impressions.

No pretrained weights exist offline, so the demo trains detectors from scratch; the objects are therefore
drawn high-contrast and distinct (see `render`). Everything is a pure function of the seed: each brand,
image and video draws from its own `numpy` Generator seeded by `(seed, crc32(brand), kind, index)`, so one
creative does not change when counts or brands change elsewhere, and no time- or hash-randomised value is
used. Same seed → byte-identical label files and identical image pixels.

Label forms written (acme gets COCO, globex JSONL, other brands alternate; see `label_format`):
- COCO: `raw/<brand>/labels/<brand>_coco.json` (stills) and an Azure ML Data Labeling COCO export
  `raw/<brand>/labels/<brand>_video_frames_azureml.json` (labelled video frames, normalised boxes);
- Azure ML AutoML JSONL: `raw/<brand>/labels/<brand>.jsonl` (stills and frames, normalised boxes).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd

from creative_assets.atomic import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text
from creative_assets.demo.render import (
    CATEGORIES,
    SIZE_RANGE,
    SKIN_TONES,
    Box,
    BrandStyle,
    Colour,
    add_grain,
    adjust_tone,
    brand_style,
    draw_brand_cue,
    draw_clutter,
    draw_face,
    draw_logo,
    draw_product,
    object_aspect,
    render_background,
)
from creative_assets.layout import DataRoot
from creative_assets.settings import validate_brand

CATEGORY_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(CATEGORIES)}
IMPRESSIONS_COLUMNS: tuple[str, ...] = ("date", "brand", "creative_id", "impressions", "spend", "channel")
IMPRESSIONS_START = date(2024, 1, 1)
IMPRESSIONS_DAYS = 56
VIDEO_FOURCC = "mp4v"

# Azure names are placeholders of the right shape; the pipeline resolves them by path suffix/basename.
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AZURE_RESOURCE_GROUP = "creative-assets-demo"
AZURE_WORKSPACE = "creative-assets"
AZURE_DATASTORE = "workspaceblobstore"

# Stills planned to hold each object, as a share of all stills (labelled and unlabelled planned apart).
# Non-empty stills that draw nothing get one object more, which lifts each share to about 25-30 %
# (faces ~30 %, smiles ~70 % of faces); 15 % stay empty so presence models see negatives.
_NEGATIVE_SHARE = 0.15
_PRESENCE_SHARE = {"logo": 0.2, "product": 0.2, "brand_cue": 0.2, "face": 0.24}
_SMILE_SHARE = 0.7
_SECOND_INSTANCE_SHARE = 0.1
_MAX_OVERLAP = 0.08  # intersection over the smaller box
_JPEG_QUALITY = 92
_CPM = {"display": 4.0, "social": 6.5, "video": 12.0}

# progress(done, total): creatives written so far and in all, over every brand
ProgressFn = Callable[[int, int], None]


class DemoDataExistsError(FileExistsError):
    """The data root already holds raw files the demo would overwrite."""


@dataclass(frozen=True)
class DemoSummary:
    """What `generate_demo_data` wrote; counts are per brand, boxes per brand and category."""

    data_root: Path
    brands: tuple[str, ...]
    images: dict[str, int]
    videos: dict[str, int]
    labelled_images: dict[str, int]
    labelled_frames: dict[str, int]
    boxes: dict[str, dict[str, int]]
    label_files: tuple[str, ...]
    impressions_rows: int
    impressions_file: str | None
    creative_ids: dict[str, tuple[str, ...]] = field(repr=False)

    def total_boxes(self, category: str) -> int:
        """Boxes of `category` over every brand."""
        return sum(b.get(category, 0) for b in self.boxes.values())


_Geometry = tuple[float, float, float, float]  # cx, cy, w, h


def _lerp(a: _Geometry, b: _Geometry, t: float) -> _Geometry:
    return tuple(u + (v - u) * t for u, v in zip(a, b, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True)
class _Track:
    """One object in a scene: a box moving linearly from `start` to `end` (cx, cy, w, h) while visible."""

    category: str
    start: _Geometry
    end: _Geometry
    first: int
    last: int
    skin: Colour | None = None
    smiling: bool = False

    def geometry(self, t: float) -> _Geometry:
        return _lerp(self.start, self.end, t)

    def box(self, frame: int, n_frames: int, width: int, height: int) -> Box:
        t = frame / (n_frames - 1) if n_frames > 1 else 0.0
        cx, cy, w, h = self.geometry(t)
        x0, y0 = max(0, round(cx - w / 2)), max(0, round(cy - h / 2))
        x1, y1 = min(width, round(cx + w / 2)), min(height, round(cy + h / 2))
        return x0, y0, x1, y1


@dataclass(frozen=True)
class _Scene:
    """A creative's look: background (with clutter), moving objects, global tone."""

    background: np.ndarray
    tracks: tuple[_Track, ...]
    contrast: float
    brightness: float
    grain: float
    blur: bool


@dataclass
class _Labelled:
    """One labelled image: a still (`frame_index` None) or a video frame."""

    creative_id: str
    frame_index: int | None
    width: int
    height: int
    boxes: list[tuple[str, Box]]


# ---------------------------------------------------------------------------------------------------------
# public API


def label_format(brand: str, position: int) -> Literal["coco", "jsonl"]:
    """Which label form a brand gets: acme COCO, globex JSONL, others alternate by position."""
    if brand == "acme":
        return "coco"
    if brand == "globex":
        return "jsonl"
    return "coco" if position % 2 == 0 else "jsonl"


def generate_demo_data(
    data_root: Path,
    *,
    seed: int = 0,
    brands: Sequence[str] = ("acme", "globex"),
    labelled_images: int = 70,
    unlabelled_images: int = 40,
    labelled_videos: int = 2,
    unlabelled_videos: int = 2,
    image_size: tuple[int, int] = (320, 240),
    video_seconds: float = 4.0,
    video_fps: int = 10,
    frame_stride: int = 10,
    impressions: bool = True,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> DemoSummary:
    """Write synthetic creatives, labels and impressions under `data_root`; same seed → same data.

    Refuses (DemoDataExistsError) when a named brand's `raw/<brand>/` already holds files, or when
    `raw/impressions.csv` exists and `impressions` is set; `overwrite=True` deletes each named brand's raw
    folder first and replaces the impressions file. Sizes are `(width, height)`; a video has
    `round(video_seconds * video_fps)` frames and its labels cover frames `0, frame_stride, …`.
    """
    root = DataRoot(Path(data_root))
    brands = tuple(validate_brand(b) for b in brands)
    width, height = _check_arguments(
        brands,
        (labelled_images, unlabelled_images, labelled_videos, unlabelled_videos),
        image_size,
        video_seconds,
        video_fps,
        frame_stride,
        seed,
    )
    _claim(root, brands, impressions, overwrite)
    n_frames = max(1, int(round(video_seconds * video_fps)))
    n_videos = labelled_videos + unlabelled_videos
    total = len(brands) * (labelled_images + unlabelled_images + n_videos)
    done = 0

    images, videos, labelled_counts, frame_counts = {}, {}, {}, {}
    boxes: dict[str, dict[str, int]] = {}
    creative_ids: dict[str, tuple[str, ...]] = {}
    label_files: list[str] = []
    for position, brand in enumerate(brands):
        style = brand_style(brand)
        key = zlib.crc32(brand.encode("utf-8"))
        creatives = root.creatives(brand)
        ids: list[str] = []
        stills: list[_Labelled] = []
        plans = _plan_stills(_rng(seed, key, 0, 0), labelled_images) + _plan_stills(
            _rng(seed, key, 0, 1), unlabelled_images
        )
        for i, plan in enumerate(plans):
            number = i + 1
            ext = "png" if number % 5 == 2 else "jpg"
            creative_id = f"images/{brand}_{number:04d}.{ext}"
            rng = _rng(seed, key, 1, i)
            scene = _build_scene(rng, plan, style, width, height, n_frames=1)
            img, found = _render_frame(scene, style, 0, 1, rng)
            _write_image(creatives / creative_id, img)
            ids.append(creative_id)
            if i < labelled_images:
                stills.append(_Labelled(creative_id, None, width, height, found))
            done += 1
            if progress is not None:
                progress(done, total)

        frames: list[_Labelled] = []
        for j in range(n_videos):
            creative_id = f"videos/{brand}_promo_{j + 1:02d}.mp4"
            rng = _rng(seed, key, 2, j)
            scene = _build_scene(rng, _plan_video(rng), style, width, height, n_frames=n_frames)
            drawn: dict[int, list[tuple[str, Box]]] = {}
            _write_video(creatives / creative_id, _frames(scene, style, n_frames, rng, drawn), video_fps)
            if j < labelled_videos:
                for index in range(0, n_frames, frame_stride):
                    frames.append(_Labelled(creative_id, index, width, height, drawn[index]))
            ids.append(creative_id)
            done += 1
            if progress is not None:
                progress(done, total)

        label_files += _write_labels(root, brand, label_format(brand, position), stills, frames)
        images[brand] = labelled_images + unlabelled_images
        videos[brand] = n_videos
        labelled_counts[brand] = len(stills)
        frame_counts[brand] = len(frames)
        counts = dict.fromkeys(CATEGORIES, 0)
        for record in stills + frames:
            for category, _ in record.boxes:
                counts[category] += 1
        boxes[brand] = counts
        creative_ids[brand] = tuple(ids)

    rows, impressions_file = 0, None
    if impressions:
        table = impressions_table(creative_ids, seed)
        target = root.root / "raw" / "impressions.csv"
        atomic_write_text(target, table.to_csv(index=False, float_format="%.2f", lineterminator="\n"))
        rows = len(table)
        impressions_file = root.relative(target)
    return DemoSummary(
        data_root=root.root,
        brands=brands,
        images=images,
        videos=videos,
        labelled_images=labelled_counts,
        labelled_frames=frame_counts,
        boxes=boxes,
        label_files=tuple(label_files),
        impressions_rows=rows,
        impressions_file=impressions_file,
        creative_ids=creative_ids,
    )


def impressions_table(creative_ids: dict[str, Sequence[str]], seed: int = 0) -> pd.DataFrame:
    """Daily impressions and spend for each creative over its flight within 8 weeks (IMPRESSIONS_COLUMNS)."""
    rows: list[tuple[str, str, str, int, float, str]] = []
    for brand in sorted(creative_ids):
        rng = _rng(seed, zlib.crc32(brand.encode("utf-8")), 3, 0)
        for creative_id in sorted(creative_ids[brand]):
            is_video = creative_id.startswith("videos/")
            channel = str(rng.choice(["video", "social"] if is_video else ["display", "social"]))
            start = int(rng.integers(0, IMPRESSIONS_DAYS - 14))
            length = int(rng.integers(14, IMPRESSIONS_DAYS - start + 1))
            base = float(rng.lognormal(math.log(4000.0), 0.6))
            cpm = _CPM[channel] * float(rng.uniform(0.85, 1.15))
            for day in range(start, start + length):
                when = IMPRESSIONS_START + timedelta(days=day)
                weekly = 1.15 if when.weekday() >= 5 else 1.0
                count = int(rng.poisson(base * weekly))
                rows.append(
                    (when.isoformat(), brand, creative_id, count, round(count * cpm / 1000.0, 2), channel)
                )
    frame = pd.DataFrame(rows, columns=list(IMPRESSIONS_COLUMNS))
    for column in ("date", "brand", "creative_id", "channel"):
        frame[column] = frame[column].astype(pd.StringDtype())
    frame["impressions"] = frame["impressions"].astype("int64")
    frame["spend"] = frame["spend"].astype("float64")
    return frame


def azure_datastore_uri(brand: str, relative: str) -> str:
    """`AmlDatastore://workspaceblobstore/<brand>/<relative>` as in Azure ML Data Labeling exports."""
    return f"AmlDatastore://{AZURE_DATASTORE}/{brand}/{relative}"


def azureml_uri(brand: str, relative: str) -> str:
    """The long-form `azureml://subscriptions/…/paths/<brand>/<relative>` AutoML JSONL uses."""
    return (
        f"azureml://subscriptions/{AZURE_SUBSCRIPTION}/resourcegroups/{AZURE_RESOURCE_GROUP}"
        f"/workspaces/{AZURE_WORKSPACE}/datastores/{AZURE_DATASTORE}/paths/{brand}/{relative}"
    )


# ---------------------------------------------------------------------------------------------------------
# checks


def _check_arguments(
    brands: tuple[str, ...],
    counts: tuple[int, int, int, int],
    image_size: tuple[int, int],
    video_seconds: float,
    video_fps: int,
    frame_stride: int,
    seed: int,
) -> tuple[int, int]:
    if not brands:
        raise ValueError("at least one brand is needed")
    if len(set(brands)) != len(brands):
        raise ValueError(f"brands must be distinct: {list(brands)}")
    if any(not isinstance(c, int) or c < 0 for c in counts):
        raise ValueError(f"image and video counts must be integers >= 0, got {counts}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if len(image_size) != 2:
        raise ValueError(f"image_size must be (width, height), got {image_size!r}")
    width, height = (int(v) for v in image_size)
    if width < 48 or height < 48:
        raise ValueError(f"image_size must be at least 48 x 48 pixels, got {image_size}")
    if counts[2] + counts[3] > 0:
        if width % 2 or height % 2:
            raise ValueError(f"video frames need an even width and height (MPEG-4), got {image_size}")
        if video_seconds <= 0 or video_fps <= 0:
            raise ValueError("video_seconds and video_fps must be positive")
    if frame_stride <= 0:
        raise ValueError("frame_stride must be positive")
    return width, height


def _claim(root: DataRoot, brands: tuple[str, ...], impressions: bool, overwrite: bool) -> None:
    """Refuse to mix with existing raw data unless `overwrite`; then clear each brand's raw folder."""
    occupied = [root.raw(b) for b in brands if any(p.is_file() for p in root.raw(b).rglob("*"))]
    csv = root.root / "raw" / "impressions.csv"
    if impressions and csv.exists():
        occupied.append(csv)
    if occupied and not overwrite:
        names = ", ".join(root.relative(p) for p in occupied)
        raise DemoDataExistsError(
            f"{root.root} already holds {names}; pass overwrite=True (creative-assets demo --overwrite) "
            "to replace them with demo data"
        )
    for brand in brands:
        folder = root.raw(brand)
        root.relative(folder)  # never remove anything outside the data root
        if folder.is_dir():
            shutil.rmtree(folder)


# ---------------------------------------------------------------------------------------------------------
# scenes


def _rng(seed: int, brand_key: int, kind: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, brand_key, kind, index]))


def _plan_stills(rng: np.random.Generator, n: int) -> list[list[str]]:
    """Categories of each of `n` stills, about 15 % empty; "smile" marks a smiling face."""
    if n == 0:
        return []
    order = rng.permutation(n)
    negatives = set(order[: int(round(_NEGATIVE_SHARE * n))].tolist())
    positives = [i for i in range(n) if i not in negatives]
    plans: list[list[str]] = [[] for _ in range(n)]
    for category, share in _PRESENCE_SHARE.items():
        k = min(len(positives), int(round(share * n)))
        for i in rng.choice(positives, size=k, replace=False) if k else []:
            plans[int(i)].append(category)
    for i in positives:
        if not plans[i]:
            plans[i].append(list(_PRESENCE_SHARE)[int(rng.integers(len(_PRESENCE_SHARE)))])
    faces = [i for i in range(n) if "face" in plans[i]]
    for i in rng.choice(faces, size=int(round(_SMILE_SHARE * len(faces))), replace=False) if faces else []:
        plans[int(i)].append("smile")
    for plan in plans:
        for category in ("logo", "product"):
            if category in plan and rng.random() < _SECOND_INSTANCE_SHARE:
                plan.append(category)
    return plans


def _plan_video(rng: np.random.Generator) -> list[str]:
    """Two to four objects (logos likely, so most videos show the brand); "smile" marks a smiling face."""
    plan = [
        c
        for c, p in (("logo", 0.75), ("product", 0.55), ("brand_cue", 0.5), ("face", 0.6))
        if rng.random() < p
    ]
    while len(plan) < 2:
        extra = list(_PRESENCE_SHARE)[int(rng.integers(len(_PRESENCE_SHARE)))]
        if extra not in plan:
            plan.append(extra)
    if "face" in plan and rng.random() < _SMILE_SHARE:
        plan.append("smile")
    return plan


def _overlap(a: _Geometry, b: _Geometry) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw / 2, bx + bw / 2) - max(ax - aw / 2, bx - bw / 2))
    iy = max(0.0, min(ay + ah / 2, by + bh / 2) - max(ay - ah / 2, by - bh / 2))
    return ix * iy / max(1e-6, min(aw * ah, bw * bh))


def _build_scene(
    rng: np.random.Generator, plan: list[str], style: BrandStyle, width: int, height: int, n_frames: int
) -> _Scene:
    short = min(width, height)
    background = render_background(rng, width, height)
    clutter = int(rng.integers(2, 8) * max(0.4, width * height / (320 * 240)))
    draw_clutter(background, rng, max(1, clutter))
    moving = n_frames > 1
    samples = (0.0, 0.25, 0.5, 0.75, 1.0) if moving else (0.0,)
    tracks: list[_Track] = []
    for category in plan:
        if category == "smile":
            continue  # a smile is drawn as part of its face
        aspect = object_aspect(category, style, rng)
        lo, hi = SIZE_RANGE[category]
        fraction = float(rng.uniform(lo, hi))
        placed: tuple[_Geometry, _Geometry] | None = None
        for _round in range(4):
            size = fraction * short
            w0, h0 = size * math.sqrt(aspect), size / math.sqrt(aspect)
            fit = min(1.0, (width - 4) / w0, (height - 4) / h0)
            w0, h0 = w0 * fit, h0 * fit
            for _ in range(40):
                start, end = _candidate(rng, w0, h0, width, height, moving)
                if all(
                    _overlap(_lerp(start, end, t), other.geometry(t)) <= _MAX_OVERLAP
                    for other in tracks
                    for t in samples
                ):
                    placed = start, end
                    break
            if placed is not None:
                break
            fraction *= 0.8
        if placed is None:
            continue  # no room left: the object is simply not in this creative (and not labelled)
        first, last = 0, n_frames - 1
        if moving and rng.random() < 0.3:
            first = int(rng.integers(1, max(2, n_frames // 2)))
        elif moving and rng.random() < 0.25:
            last = int(rng.integers(n_frames // 2, n_frames - 1))
        skin, smiling = None, False
        if category == "face":
            skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
            smiling = "smile" in plan
        tracks.append(_Track(category, placed[0], placed[1], first, last, skin, smiling))
    return _Scene(
        background=background,
        tracks=tuple(tracks),
        contrast=float(rng.uniform(0.75, 1.25)),
        brightness=float(rng.uniform(-30, 30)),
        grain=float(rng.uniform(0.0, 5.0)),
        blur=bool(rng.random() < 0.15),
    )


def _candidate(
    rng: np.random.Generator, w0: float, h0: float, width: int, height: int, moving: bool
) -> tuple[_Geometry, _Geometry]:
    """A box of size (w0, h0) inside the image and, when moving, an end box shifted and rescaled."""

    def centre(w: float, h: float) -> tuple[float, float]:
        return float(rng.uniform(w / 2 + 1, width - w / 2 - 1)), float(
            rng.uniform(h / 2 + 1, height - h / 2 - 1)
        )

    cx, cy = centre(w0, h0)
    start = (cx, cy, w0, h0)
    if not moving:
        return start, start
    scale = float(rng.uniform(0.85, 1.15))
    w1, h1 = w0 * scale, h0 * scale
    fit = min(1.0, (width - 4) / w1, (height - 4) / h1)
    w1, h1 = w1 * fit, h1 * fit
    ex = float(np.clip(cx + rng.uniform(-0.35, 0.35) * width, w1 / 2 + 1, width - w1 / 2 - 1))
    ey = float(np.clip(cy + rng.uniform(-0.25, 0.25) * height, h1 / 2 + 1, height - h1 / 2 - 1))
    return start, (ex, ey, w1, h1)


def _render_frame(
    scene: _Scene, style: BrandStyle, frame: int, n_frames: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[str, Box]]]:
    """Draw the scene at `frame`; returns the BGR image and the boxes of what was drawn."""
    height, width = scene.background.shape[:2]
    img = scene.background.copy()
    found: list[tuple[str, Box]] = []
    for track in scene.tracks:
        if not track.first <= frame <= track.last:
            continue
        box = track.box(frame, n_frames, width, height)
        if track.category == "logo":
            draw_logo(img, box, style)
        elif track.category == "product":
            draw_product(img, box, style)
        elif track.category == "brand_cue":
            draw_brand_cue(img, box, style)
        elif track.category == "face":
            smile = draw_face(img, box, track.skin or SKIN_TONES[0], track.smiling)
            found.append(("face", box))
            if smile is not None:
                found.append(("smile", smile))
            continue
        found.append((track.category, box))
    if scene.blur:
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.6)
    img = adjust_tone(img, scene.contrast, scene.brightness)
    return add_grain(img, rng, scene.grain), found


# ---------------------------------------------------------------------------------------------------------
# writers


def _write_image(target: Path, img: np.ndarray) -> None:
    if target.suffix == ".png":
        ok, data = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {target.name}")
    atomic_write_bytes(target, data.tobytes())


def _frames(
    scene: _Scene, style: BrandStyle, n_frames: int, rng: np.random.Generator, drawn: dict[int, list]
) -> Iterator[np.ndarray]:
    """Render the scene frame by frame, recording each frame's boxes in `drawn`."""
    for index in range(n_frames):
        img, drawn[index] = _render_frame(scene, style, index, n_frames, rng)
        yield img


def _write_video(target: Path, frames: Iterator[np.ndarray], fps: int) -> None:
    """Encode BGR frames as MP4 (mp4v) at `target`, atomically."""
    with atomic_path(target) as tmp:
        # The writer picks its container from the extension, so encode beside the temporary under .mp4.
        staging = tmp.with_name(tmp.name + target.suffix)
        writer: cv2.VideoWriter | None = None
        try:
            for img in frames:
                if writer is None:
                    size = (img.shape[1], img.shape[0])
                    writer = cv2.VideoWriter(
                        str(staging), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), float(fps), size
                    )
                    if not writer.isOpened():
                        raise RuntimeError(f"OpenCV could not open a {VIDEO_FOURCC} writer for {target.name}")
                writer.write(img)
            if writer is None:
                raise ValueError(f"no frames to write to {target.name}")
            writer.release()
            os.replace(staging, tmp)
        finally:
            if writer is not None:
                writer.release()
            staging.unlink(missing_ok=True)


def _normalised(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return round(x0 / width, 6), round(y0 / height, 6), round(x1 / width, 6), round(y1 / height, 6)


def _categories() -> list[dict[str, object]]:
    return [{"id": CATEGORY_IDS[c], "name": c, "supercategory": "brand_object"} for c in CATEGORIES]


def _coco_document(brand: str, records: list[_Labelled]) -> dict[str, object]:
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        images.append(
            {"id": image_id, "file_name": record.creative_id, "width": record.width, "height": record.height}
        )
        for category, (x0, y0, x1, y1) in record.boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_IDS[category],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "iscrowd": 0,
                }
            )
    return {
        "info": {"description": f"{brand} synthetic demo creatives", "version": "1.0", "year": 2024},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": _categories(),
    }


def _azure_coco_document(brand: str, records: list[_Labelled]) -> dict[str, object]:
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        uri = azure_datastore_uri(brand, _frame_reference(record))
        images.append(
            {
                "id": image_id,
                "width": record.width,
                "height": record.height,
                "file_name": uri,
                "coco_url": uri,
                "absolute_url": uri,
                "date_captured": "2024-01-01T00:00:00.000Z",
            }
        )
        for category, box in record.boxes:
            x0, y0, x1, y1 = _normalised(box, record.width, record.height)
            w, h = round(x1 - x0, 6), round(y1 - y0, 6)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "category_id": CATEGORY_IDS[category],
                    "image_id": image_id,
                    "area": round(w * h, 8),
                    "bbox": [x0, y0, w, h],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": _categories()}


def _frame_reference(record: _Labelled) -> str:
    """`frames/<creative_id>/<frame:06d>.jpg` for a frame, the creative id for a still."""
    if record.frame_index is None:
        return record.creative_id
    return f"frames/{record.creative_id}/{record.frame_index:06d}.jpg"


def _jsonl_text(brand: str, records: list[_Labelled]) -> str:
    lines = []
    for record in records:
        fmt = "jpg" if record.frame_index is not None else record.creative_id.rsplit(".", 1)[-1]
        labels = []
        for category, box in record.boxes:
            x0, y0, x1, y1 = _normalised(box, record.width, record.height)
            labels.append(
                {"label": category, "topX": x0, "topY": y0, "bottomX": x1, "bottomY": y1, "isCrowd": 0}
            )
        line = {
            "image_url": azureml_uri(brand, _frame_reference(record)),
            "image_details": {"format": fmt, "width": record.width, "height": record.height},
            "label": labels,
        }
        lines.append(json.dumps(line))
    return "".join(line + "\n" for line in lines)


def _write_labels(
    root: DataRoot, brand: str, form: str, stills: list[_Labelled], frames: list[_Labelled]
) -> list[str]:
    """Write the brand's label files; returns their paths relative to the data root."""
    folder = root.labels(brand)
    written: list[Path] = []
    if form == "coco":
        if stills:
            written.append(folder / f"{brand}_coco.json")
            atomic_write_json(written[-1], _coco_document(brand, stills))
        if frames:
            written.append(folder / f"{brand}_video_frames_azureml.json")
            atomic_write_json(written[-1], _azure_coco_document(brand, frames))
    elif stills or frames:
        written.append(folder / f"{brand}.jsonl")
        atomic_write_text(written[-1], _jsonl_text(brand, stills + frames))
    return [root.relative(p) for p in written]
