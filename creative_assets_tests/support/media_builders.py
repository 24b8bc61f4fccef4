"""Small images and videos written for tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: int = 25, size: tuple[int, int] = (64, 48), fps: float = 10.0) -> Path:
    """An mp4v video whose frame i is a flat grey of level 9·i, so decode order is visible in the pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((height, width, 3), (9 * i) % 256, np.uint8))
    writer.release()
    return path


def write_image(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    """A small image in the format its extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (0, 0, 255)
    assert cv2.imwrite(str(path), image)
    return path
