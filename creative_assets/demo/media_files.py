"""Writing synthetic creatives: stills as PNG/JPEG and videos as MP4, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from creative_assets.atomic import atomic_path, atomic_write_bytes

VIDEO_FOURCC = "mp4v"
JPEG_QUALITY = 92


def write_image(target: Path, img: np.ndarray) -> None:
    if target.suffix == ".png":
        ok, data = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {target.name}")
    atomic_write_bytes(target, data.tobytes())


def write_video(target: Path, frames: Iterator[np.ndarray], fps: int) -> None:
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
