"""Training speed: seconds per iteration of the torchvision backend for each architecture.

Each architecture trains from random init (`weights: none`) on synthetic COCO images with a few coloured
boxes, through `TorchvisionBackend.train` — the real loop with data loading, AMP and the solver — at one
image size (MIN_SIZE_TRAIN = MIN_SIZE_TEST = `--size`). The first `--warmup` iterations are left out of the
timing. RPN and RoI sample counts are the chosen profile's (`--profile demo`: 300/150 proposals, 64 RPN
samples; `--profile full`: torchvision/detectron2 defaults) with `--roi` RoI samples per image. On CUDA each
architecture runs with AMP off and on.

Run: `python benchmarks/bench_train.py [--size 320 --iters 6 --warmup 2 --ims-per-batch 2 --threads 1]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from creative_assets.detection.architectures import ARCHITECTURES
from creative_assets.detection.backend import CocoSplit, TrialParams
from creative_assets.detection.registry import resolve_device
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.settings import build_settings

DEFAULT_ARCHITECTURES = ("tiny", "mobilenet_v3_large", "resnet50_v2", "resnext101_32x8d")


def make_split(folder: Path, count: int, width: int, height: int) -> CocoSplit:
    """`count` JPEGs with one to three coloured boxes each, as a one-class COCO split."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        image = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            w, h = int(rng.integers(20, width // 3)), int(rng.integers(20, height // 3))
            x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            colour = tuple(int(c) for c in rng.integers(120, 256, 3))
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), colour, -1)
            annotations.append(
                {"id": len(annotations) + 1, "image_id": i + 1, "category_id": 1, "bbox": [x, y, w, h]}
            )
        cv2.imwrite(str(folder / "images" / f"{i:04d}.jpg"), image)
        images.append({"id": i + 1, "file_name": f"images/{i:04d}.jpg", "width": width, "height": height})
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "box"}]}
    (folder / "train.json").write_text(json.dumps(coco), encoding="utf-8")
    return CocoSplit(folder / "train.json", folder)


def seconds_per_iteration(
    split: CocoSplit, architecture: str, args: argparse.Namespace, device: str, amp: bool, out: Path
) -> float:
    """Median wall seconds of the timed iterations of one training run."""
    train = {
        "architecture": architecture,
        "weights": "none",
        "device": device,
        "amp": amp,
        "ims_per_batch": args.ims_per_batch,
        "min_size_train": [args.size],
        "max_size_train": args.size * 2,
        "min_size_test": args.size,
        "max_size_test": args.size * 2,
        "warmup_iters": 0,
    }
    settings = build_settings(out, args.profile, {"train": train}).train
    stamps: list[float] = []

    def progress(_i: int, _n: int, _info: dict[str, float]) -> None:
        if device == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    backend = TorchvisionBackend(device, cpu_threads=args.threads)
    backend.train(
        split, ["box"], TrialParams(args.warmup + args.iters, args.roi), settings, out, progress=progress
    )
    steps = np.diff(stamps[args.warmup - 1 :]) if args.warmup > 0 else np.diff(stamps)
    return float(statistics.median(steps.tolist()))


def main() -> None:
    """Parse arguments, time every architecture, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--architectures", nargs="+", default=list(DEFAULT_ARCHITECTURES), choices=ARCHITECTURES
    )
    parser.add_argument("--size", type=int, default=320, help="short side of the training images (px)")
    parser.add_argument("--iters", type=int, default=6, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=2, help="iterations left out of the timing")
    parser.add_argument("--ims-per-batch", type=int, default=2)
    parser.add_argument("--roi", type=int, default=64, help="ROI_HEADS.BATCH_SIZE_PER_IMAGE")
    parser.add_argument("--profile", default="demo", choices=["smoke", "demo", "full"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    amps = [False, True] if device == "cuda" else [False]
    threads = args.threads or torch.get_num_threads()
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {threads} torch threads"
    print(
        f"device: {name}; torch {torch.__version__}; {args.ims_per_batch} images/iteration at {args.size} px"
    )
    print(
        f"profile {args.profile} RPN settings, {args.roi} RoI samples/image, median of {args.iters} iterations"
    )
    print(f"{'architecture':<20} {'amp':<5} {'s/iteration':>12} {'images/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        split = make_split(Path(tmp) / "data", 16, int(args.size * 4 / 3), args.size)
        for architecture in args.architectures:
            for amp in amps:
                seconds = seconds_per_iteration(split, architecture, args, device, amp, Path(tmp) / "out")
                print(
                    f"{architecture:<20} {str(amp).lower():<5} {seconds:>12.3f} "
                    f"{args.ims_per_batch / seconds:>10.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
