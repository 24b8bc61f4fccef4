"""A small brand for detection tests: real PNG/JPEG stills and extracted frames with coloured squares, and a
real, deterministic colour-blob detector that finds them (shared by the local, subprocess and Ray tests)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from creative_assets.checksums import sha256_file
from creative_assets.detection.backend import Predictions
from creative_assets.detection.batch_rows import LoadedModel
from creative_assets.layout import DataRoot

BRAND = "acme"

# BGR ranges: saturated red is a "logo", saturated blue a "product".
COLOUR_RANGES = {"logo": ((0, 0, 150), (90, 90, 255)), "product": ((150, 0, 0), (255, 90, 90))}


class ColourBlobDetector:
    """A real, deterministic Detector: each connected blob of a class colour is one box.

    Score = 0.3 + 0.69 × the share of the box the blob fills, so a filled square scores ~0.99 and a thin ring
    ~0.4 — enough to exercise thresholds. `delay_s` per image makes a run slow enough to be killed mid-way.
    """

    backend = "colour-blobs"
    device = "cpu"

    def __init__(self, classes: Sequence[str] = ("logo",), delay_s: float = 0.0) -> None:
        self.classes = list(classes)
        self.delay_s = delay_s

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        out = []
        for image in images:
            if self.delay_s:
                time.sleep(self.delay_s)
            boxes, scores, labels = [], [], []
            for label, name in enumerate(self.classes):
                lo, hi = COLOUR_RANGES[name]
                mask = cv2.inRange(image, np.array(lo, np.uint8), np.array(hi, np.uint8))
                contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                for contour in contours:
                    x, y, w, h = cv2.boundingRect(contour)
                    if w * h < 16:
                        continue
                    score = 0.3 + 0.69 * float(mask[y : y + h, x : x + w].mean()) / 255.0
                    if score >= score_floor:
                        boxes.append([x, y, x + w, y + h])
                        scores.append(score)
                        labels.append(label)
            order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
            out.append(
                Predictions(
                    boxes=np.asarray(boxes, np.float32).reshape(-1, 4)[order],
                    scores=np.asarray(scores, np.float32)[order],
                    labels=np.asarray(labels, np.int64)[order],
                )
            )
        return out


def colour_models(model_id: str = "m1", delay_s: float = 0.0) -> list[LoadedModel]:
    """The two models a test brand runs: logo (threshold 0.6) and product (threshold 0.5)."""
    return [
        LoadedModel("logo", model_id, ColourBlobDetector(["logo"], delay_s), {"logo": 0.6}),
        LoadedModel("product", model_id, ColourBlobDetector(["product"], delay_s), {"product": 0.5}),
    ]


def write_still(root: DataRoot, creative_id: str, seed: int) -> dict:
    """A 64×48 image with a filled red square, sometimes a red ring and a blue square; its manifest row."""
    image = np.full((48, 64, 3), 235, np.uint8)
    x = 4 + (seed * 7) % 30
    cv2.rectangle(image, (x, 6), (x + 15, 21), (0, 0, 255), thickness=-1)
    if seed % 3 == 0:
        cv2.rectangle(image, (40, 26), (60, 44), (0, 0, 255), thickness=1)
    if seed % 2 == 0:
        cv2.rectangle(image, (6, 28), (21, 43), (255, 0, 0), thickness=-1)
    path = root.creatives(BRAND) / creative_id
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return manifest_row(root, creative_id, "image", path)


def manifest_row(root: DataRoot, creative_id: str, media_type: str, path: Path, **extra) -> dict:
    row = {
        "brand": BRAND,
        "creative_id": creative_id,
        "media_type": media_type,
        "path": root.relative(path),
        "width": 64,
        "height": 48,
        "fps": np.nan,
        "frame_count": pd.NA,
        "duration_s": np.nan,
        "bytes": path.stat().st_size if path.exists() else 0,
        "sha256": sha256_file(path) if path.exists() else "0" * 64,
    }
    row.update(extra)
    return row


def write_video_frames(root: DataRoot, creative_id: str, n: int = 4) -> tuple[dict, list[dict]]:
    """Frames 0, 10, 20, … of a 10 fps video (only the extracted JPEGs exist); red from the third frame."""
    frames = []
    for i in range(n):
        image = np.full((48, 64, 3), 230, np.uint8)
        if i >= 2:
            cv2.rectangle(image, (20, 10), (40, 30), (0, 0, 255), thickness=-1)
        path = root.frame_path(BRAND, creative_id, i * 10)
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        frames.append(
            {
                "brand": BRAND,
                "creative_id": creative_id,
                "frame_index": i * 10,
                "timestamp_s": float(i),
                "path": root.relative(path),
                "width": 64,
                "height": 48,
            }
        )
    video = root.creatives(BRAND) / creative_id
    video.parent.mkdir(parents=True, exist_ok=True)
    video.write_bytes(b"stand-in for " + creative_id.encode())
    row = manifest_row(root, creative_id, "video", video, fps=10.0, frame_count=10 * n, duration_s=float(n))
    return row, frames


def build_brand(root: DataRoot, n_stills: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stills `img/00.png`, `img/01.jpg`, … and one video `vid/spot.mp4` with 4 frames."""
    rows = [write_still(root, f"img/{i:02d}.{'png' if i % 2 == 0 else 'jpg'}", i) for i in range(n_stills)]
    video_row, frame_rows = write_video_frames(root, "vid/spot.mp4")
    manifest = pd.DataFrame([*rows, video_row])
    frames = pd.DataFrame(frame_rows).astype({"frame_index": "int64", "timestamp_s": "float64"})
    return manifest, frames
