"""Deterministic synthetic demo data: creatives, labels in the three supported forms, and impressions.

No pretrained weights exist offline, so the demo trains detectors from scratch; the objects are therefore
drawn high-contrast and distinct (see `render`). Everything is a pure function of the seed: each brand,
image and video draws from its own `numpy` Generator seeded by `(seed, crc32(brand), kind, index)`, so one
creative does not change when counts or brands change elsewhere, and no time- or hash-randomised value is
used. Same seed → byte-identical label files and identical image pixels.

Scenes are planned and drawn in `scenes`, written in `media_files`; labels are written in the form
`label_files.label_format` gives each brand (acme COCO, globex JSONL, others alternate); impressions come
from `impressions`.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from creative_assets.atomic import atomic_write_text
from creative_assets.demo.impressions import impressions_table
from creative_assets.demo.label_files import Labelled, label_format, write_labels
from creative_assets.demo.media_files import write_image, write_video
from creative_assets.demo.render import CATEGORIES, Box, brand_style
from creative_assets.demo.scenes import (
    build_scene,
    plan_stills,
    plan_video,
    render_frame,
    render_frames,
    rng_for,
)
from creative_assets.layout import DataRoot
from creative_assets.settings import validate_brand

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
        stills: list[Labelled] = []
        plans = plan_stills(rng_for(seed, key, 0, 0), labelled_images) + plan_stills(
            rng_for(seed, key, 0, 1), unlabelled_images
        )
        for i, plan in enumerate(plans):
            number = i + 1
            ext = "png" if number % 5 == 2 else "jpg"
            creative_id = f"images/{brand}_{number:04d}.{ext}"
            rng = rng_for(seed, key, 1, i)
            scene = build_scene(rng, plan, style, width, height, n_frames=1)
            img, found = render_frame(scene, style, 0, 1, rng)
            write_image(creatives / creative_id, img)
            ids.append(creative_id)
            if i < labelled_images:
                stills.append(Labelled(creative_id, None, width, height, found))
            done += 1
            if progress is not None:
                progress(done, total)

        frames: list[Labelled] = []
        for j in range(n_videos):
            creative_id = f"videos/{brand}_promo_{j + 1:02d}.mp4"
            rng = rng_for(seed, key, 2, j)
            scene = build_scene(rng, plan_video(rng), style, width, height, n_frames=n_frames)
            drawn: dict[int, list[tuple[str, Box]]] = {}
            write_video(creatives / creative_id, render_frames(scene, style, n_frames, rng, drawn), video_fps)
            if j < labelled_videos:
                for index in range(0, n_frames, frame_stride):
                    frames.append(Labelled(creative_id, index, width, height, drawn[index]))
            ids.append(creative_id)
            done += 1
            if progress is not None:
                progress(done, total)

        label_files += write_labels(root, brand, label_format(brand, position), stills, frames)
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
