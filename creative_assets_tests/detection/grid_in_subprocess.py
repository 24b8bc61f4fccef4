"""Run the test grid in its own process, so a test can kill it mid-grid.

Usage: python grid_in_subprocess.py DATA_ROOT SPLIT_JSON IMAGE_ROOT OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from creative_assets.detection.backend import CocoSplit
from creative_assets.detection.grid_executors import run_grid
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.settings import build_settings

CLASSES = ["logo", "product"]


def main(argv: list[str]) -> None:
    """The grid of test_grid's `grid` fixture (smoke settings, CPU, one thread), into OUT_DIR."""
    data_root, split_json, image_root, out_dir = argv
    torch.set_num_threads(1)
    split = CocoSplit(Path(split_json), Path(image_root))
    settings = build_settings(Path(data_root), "smoke", {"train": {"device": "cpu"}})
    run_grid(TorchvisionBackend("cpu"), split, split, CLASSES, settings, Path(out_dir))


if __name__ == "__main__":
    main(sys.argv[1:])
