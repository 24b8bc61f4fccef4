"""Detection throughput and peak memory: `run_detection` against a per-image loop, same models and images.

The per-image loop is what the case study does: for each image `cv2.imread`, then each model's `predict` on that
one image, with torch's own threads. `run_detection` is the pipeline's path with a profile's detection settings:
it decodes ahead in a DataLoader, runs `images_per_forward` images per model call, runs the models side by side
on the CPU's cores (`detection.model_threads`) and commits Parquet parts per batch. Each path runs in its own
subprocess so its peak RSS is its own; the models are the torchvision backend's Faster R-CNN of the profile's
architecture (random init, seeded identically in both paths) with the profile's inference settings (input size,
RPN top-k, detections per image).

Run: `python benchmarks/bench_detect.py --profile demo [--images 200 --models 5 --size 640x360]`;
`--native-size` runs the models at the images' own size; `PYTHONPATH=<another checkout>` runs that
checkout's package under the same benchmark (the before/after comparison); `--paths batched --images 1000` alone is the
memory-growth check.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.batch_rows import LoadedModel
from creative_assets.detection.batches import WORK_ITEM_DTYPES
from creative_assets.layout import DataRoot
from creative_assets.settings import PROFILE_DEFAULTS, Settings, build_settings

BRAND = "bench"
PATHS = ("per_image", "batched")
PROFILES = tuple(PROFILE_DEFAULTS)
OBJECTS = ("logo", "product", "brand_cue", "face", "smile")


def make_images(root: DataRoot, count: int, width: int, height: int) -> pd.DataFrame:
    """`count` JPEG stills with a few coloured shapes on noise; returns their work items."""
    rng = np.random.default_rng(0)
    folder = root.creatives(BRAND) / "img"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(0, width - 40)), int(rng.integers(0, height - 40))
            colour = tuple(int(c) for c in rng.integers(80, 256, 3))
            cv2.rectangle(
                image, (x, y), (x + int(rng.integers(20, 60)), y + int(rng.integers(20, 60))), colour, -1
            )
        path = folder / f"{i:06d}.jpg"
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append(
            {
                "brand": BRAND,
                "creative_id": f"img/{i:06d}.jpg",
                "media_type": "image",
                "frame_index": pd.NA,
                "timestamp_s": pd.NA,
                "path": root.relative(path),
                "sha256": f"{i:064x}",
            }
        )
    return pd.DataFrame(rows).astype(WORK_ITEM_DTYPES)


def profile_settings(args: argparse.Namespace) -> Settings:
    """The profile's settings with the benchmark's overrides (architecture, input size, batching)."""
    width, height = (int(v) for v in args.size.lower().split("x"))
    train: dict[str, object] = {"device": "cpu"}
    if args.architecture:
        train["architecture"] = args.architecture
    if args.native_size:
        train.update(min_size_test=min(width, height), max_size_test=max(width, height))
    detection = {
        key: value
        for key, value in {
            "images_per_forward": args.per_forward,
            "batch_size": args.batch_size,
            "loader_workers": args.workers,
            "model_threads": args.model_threads,
        }.items()
        if value is not None
    }
    return build_settings(Path("."), args.profile, {"train": train, "detection": detection})


def build_models(n: int, settings: Settings) -> list[LoadedModel]:
    """`n` one-class Faster R-CNNs from the torchvision backend, seeded so every process builds the same."""
    from creative_assets.detection.architectures import build_model
    from creative_assets.detection.torchvision_backend import TorchvisionDetector

    models = []
    for i in range(n):
        torch.manual_seed(i)
        name = OBJECTS[i % len(OBJECTS)] if i < len(OBJECTS) else f"object{i}"
        model, _ = build_model(settings.train.architecture, 1, settings.train, batch_size_per_image=64)
        detector = TorchvisionDetector(model, [name], "cpu", amp=False, meta={})
        models.append(LoadedModel(name, f"bench{i}", detector, {name: 0.5}))
    return models


def peak_rss_mib() -> float:
    """Peak RSS of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class TreeMemory(threading.Thread):
    """Samples the proportional set size (PSS) of this process and its children (DataLoader workers).

    Forked workers share the parent's pages, so their RSS counts the parent twice; PSS splits shared pages
    between the processes that map them, so the sum is the tree's real footprint.
    """

    def __init__(self, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_kib = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        pid = os.getpid()
        while not self.stopped.wait(self.interval_s):
            total = sum(_pss_kib(p) for p in [pid, *_children(pid)])
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self.stopped.set()
        self.join()
        return self.peak_kib / 1024


def per_image_loop(root: DataRoot, items: pd.DataFrame, models: list[LoadedModel], floor: float) -> int:
    """The case study's loop: read one image, run every model on it, keep the rows in a list."""
    rows = []
    for rel in items["path"]:
        image = cv2.imread(str(root.resolve_inside(rel)))
        for m in models:
            pred = m.detector.predict([image], score_floor=floor)[0]
            for box, score, label in zip(pred.boxes, pred.scores, pred.labels, strict=True):
                rows.append((rel, m.object_name, m.detector.classes[label], float(score), *map(float, box)))
    return len(rows)


def child(args: argparse.Namespace) -> None:
    """Run one path in this process and print one JSON line."""
    torch.set_num_threads(args.threads)
    root = DataRoot(Path(args.root))
    items = pd.read_parquet(args.items)
    settings = profile_settings(args)
    models = build_models(args.models, settings)
    warm = cv2.imread(str(root.resolve_inside(items["path"].iloc[0])))
    for m in models:  # first calls allocate; keep them out of both timings
        m.detector.predict([warm, warm], score_floor=args.floor)
    memory = TreeMemory()
    memory.start()
    started = time.perf_counter()
    if args.child == "per_image":
        detections = per_image_loop(root, items, models, args.floor)
    else:
        # an older checkout (PYTHONPATH=<its root>) has no model threads: compare its path as it was
        threads = {}
        if "model_threads" in inspect.signature(run_detection).parameters:
            threads = {"model_threads": settings.detection.model_threads}
        run = run_detection(
            root,
            BRAND,
            items,
            models,
            root.warehouse("detections", BRAND),
            batch_size=settings.detection.batch_size,
            images_per_forward=settings.detection.images_per_forward,
            score_floor=args.floor,
            loader_workers=settings.detection.loader_workers,
            **threads,
        )
        detections = run.rows
    seconds = time.perf_counter() - started
    tree = memory.stop()
    print(
        json.dumps(
            {
                "path": args.child,
                "images": len(items),
                "seconds": seconds,
                "images_per_s": len(items) / seconds,
                "detections": detections,
                "peak_rss_mib": peak_rss_mib(),
                "peak_tree_pss_mib": tree,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT of the generated JPEGs")
    parser.add_argument("--profile", default="demo", choices=PROFILES, help="settings profile")
    parser.add_argument("--architecture", help="default: the profile's")
    parser.add_argument("--native-size", action="store_true", help="run the models at the images' own size")
    parser.add_argument("--per-forward", type=int, help="images per model call (default: the profile's)")
    parser.add_argument(
        "--batch-size", type=int, help="creatives per committed part (default: the profile's)"
    )
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: the profile's)")
    parser.add_argument(
        "--model-threads", type=int, help="threads running models side by side (default: cores)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    parser.add_argument("--floor", type=float, default=0.2, help="score floor")
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--child", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--items", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="bench_detect_") as tmp:
        root = DataRoot(Path(tmp) / "data")
        items = make_images(root, args.images, width, height)
        items_file = Path(tmp) / "items.parquet"
        items.to_parquet(items_file)
        settings = profile_settings(args)
        train, detection = settings.train, settings.detection
        print(
            f"profile {args.profile}: {args.images} images {args.size}, {args.models} × {train.architecture} "
            f"Faster R-CNN at {train.min_size_test}/{train.max_size_test} px, torch threads {args.threads}; "
            f"batched: {detection.images_per_forward} per forward, {detection.loader_workers} loader workers, "
            f"model threads {getattr(detection, 'model_threads', None) or 'auto'}"
        )
        results = {}
        for path in args.paths:
            forwarded = [a for a in sys.argv[1:] if a not in ("--paths", *PATHS)]
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    *forwarded,
                    "--child",
                    path,
                    "--root",
                    str(root.root),
                    "--items",
                    str(items_file),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[path] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[path]
            print(
                f"{path:>10}: {r['images_per_s']:6.2f} images/s ({r['seconds']:.1f} s), {r['detections']} detections, "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB, peak PSS with workers {r['peak_tree_pss_mib']:.0f} MiB"
            )
        if len(results) == 2:
            ratio = results["batched"]["images_per_s"] / results["per_image"]["images_per_s"]
            print(f"batched / per-image: {ratio:.2f}×")


if __name__ == "__main__":
    main()
