"""Detection throughput on Ray: `run_detection_ray` with 1 actor against 2 actors, same models and images.

A local Ray with `--cpus` CPUs (default: every core) runs each configuration on fresh output folders; each
actor holds one CPU and one torch thread and loads every model. The models are torchvision Faster R-CNNs
(random init, seeded), saved as checkpoints of the torchvision backend so the actors load them from disk as
in production. Two rates per run: end to end (actor start and model loading included) and steady (from the
first committed batch to the last). `run_detection` in this process (one torch thread) is the reference.

Run: `python benchmarks/bench_ray_detect.py [--images 200 --models 2 --size 320x240 --architecture tiny]`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from bench_detect import OBJECTS, make_images  # the sibling benchmark's images; run as a script

from creative_assets.detection.architectures import build_model
from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.torchvision_backend import CHECKPOINT_FORMAT, TorchvisionDetector
from creative_assets.execution.ray_detect import ModelSpec, load_model, run_detection_ray
from creative_assets.layout import DataRoot
from creative_assets.settings import TrainSettings, build_settings

BRAND = "bench"


def save_models(root: DataRoot, n: int, architecture: str, width: int, height: int) -> list[ModelSpec]:
    """`n` one-class random-init detectors saved as torchvision-backend checkpoints; their specs."""
    overrides = {"min_size_test": min(width, height), "max_size_test": max(width, height)}
    settings = build_settings(root.root, "demo", {"train": {"architecture": architecture, **overrides}})
    specs = []
    for i in range(n):
        torch.manual_seed(i)
        name = OBJECTS[i % len(OBJECTS)] if i < len(OBJECTS) else f"object{i}"
        model, _ = build_model(architecture, 1, settings.train, batch_size_per_image=64)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "backend": "torchvision",
            "architecture": architecture,
            "classes": [name],
            "train_settings": settings.train.model_dump(mode="json"),
            "params": {"max_iter": 0, "batch_size_per_image": 64},
            "iteration": 0,
        }
        path = root.models(BRAND, name) / "model.pth"
        TorchvisionDetector(model, [name], "cpu", amp=False, meta=meta).save(path)
        specs.append(ModelSpec(name, f"bench{i}", "torchvision", root.relative(path), {name: 0.5}, (name,)))
    return specs


class Clock:
    """Progress callback recording when each batch finished."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def __call__(self, done: int, _total: int) -> None:
        self.marks.append((time.perf_counter(), done))

    def steady(self) -> float:
        """Images/s from the first committed batch to the last (0 with fewer than two batches)."""
        if len(self.marks) < 3:  # the first mark is the start, before any batch
            return 0.0
        (t0, d0), (t1, d1) = self.marks[1], self.marks[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    parser.add_argument("--architecture", default="tiny")
    parser.add_argument("--per-forward", type=int, default=8, help="images per model call")
    parser.add_argument("--batch-size", type=int, default=20, help="creatives per committed part")
    parser.add_argument("--floor", type=float, default=0.2, help="score floor")
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import ray

    width, height = (int(v) for v in args.size.lower().split("x"))
    options = {
        "batch_size": args.batch_size,
        "images_per_forward": args.per_forward,
        "score_floor": args.floor,
    }
    with tempfile.TemporaryDirectory(prefix="bench_ray_detect_") as tmp:
        root = DataRoot(Path(tmp) / "data")
        items = make_images(root, args.images, width, height)
        specs = save_models(root, args.models, args.architecture, width, height)
        print(
            f"{args.images} images {args.size}, {args.models} × {args.architecture} Faster R-CNN, "
            f"{args.per_forward} per forward, batches of ~{args.batch_size}, local Ray with {args.cpus} CPUs"
        )

        torch.set_num_threads(1)
        models = [load_model(root, s, TrainSettings(device="cpu")) for s in specs]
        local_out = root.warehouse("local", BRAND)
        local = run_detection(root, BRAND, items, models, local_out, loader_workers=0, **options)
        print(f"run_detection, 1 thread: {local.images_per_s:6.2f} images/s ({local.seconds:.1f} s)")

        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        rates: dict[int, tuple[float, float]] = {}
        try:
            for actors in args.actors:
                clock = Clock()
                out = root.warehouse(f"ray{actors}", BRAND)
                run = run_detection_ray(
                    root, BRAND, items, specs, out, num_actors=actors, progress=clock, **options
                )
                rates[actors] = (run.images_per_s, clock.steady())
                same = run.rows == local.rows
                print(
                    f"{actors} Ray actor(s): {run.images_per_s:6.2f} images/s end to end "
                    f"({run.seconds:.1f} s), {rates[actors][1]:6.2f} images/s steady; {run.rows} detections"
                    f"{'' if same else ' (differs from run_detection!)'}"
                )
        finally:
            ray.shutdown()
        if 1 in rates and 2 in rates:
            end_to_end = rates[2][0] / rates[1][0]
            steady = rates[2][1] / rates[1][1] if rates[1][1] else float("nan")
            print(f"2 actors / 1 actor: {end_to_end:.2f}× end to end, {steady:.2f}× steady")


if __name__ == "__main__":
    main()
