"""Detection on one GPU: the case study's per-image loop against our `detections` path, in one run.

What runs, on the same generated 1280×720 JPEG stills and the frames of one short MP4, with the same weights:

- the loop: detectron2's `DefaultPredictor` + `cv2.imread`, one image at a time (`default_predictor_loop`)
  when detectron2 is importable and has a config for the architecture; otherwise torchvision's equivalent:
  `cv2.imread`, then the Faster R-CNN on that one image, fp32;
- ours: `run_detection`, the function the `detections` asset calls, over a real data root (creatives under
  `raw/<brand>/creatives/`, the manifest from `scan_creatives`, frames from `extract_video_frames`, work items
  from `work_items`), with the model loaded from a checkpoint by the registry's backend, the profile's
  batch size, images per forward and loader workers, fp16 autocast on CUDA unless `--no-amp`.

The model is the profile's architecture (`full`: X101-32x8d FPN, MIN_SIZE_TEST 800 / MAX 1333) with random
weights from a fixed seed, one class, and BatchNorm statistics estimated on a few generated creatives (see
`calibrate_batchnorm`). Both paths are warmed up on a few images before they are timed.

Agreement. Random weights give near-random boxes, so the score floor is 0 in both paths (nothing is filtered)
and the comparison is over the loop's top-k detections per image (`--top-k`, by score): one counts as
matched when ours has an unused detection of the same class with IoU ≥ 0.9 and a score within 0.02 of it.
The reported fraction is matched / compared; with fp32 on both paths it must be 1.0.

Training (`--train-iters K`): s/iteration of the backend's own `train` at the profile's settings
(IMS_PER_BATCH, multi-scale MIN_SIZE_TRAIN, AMP), timed over K iterations after `--train-warmup` ones, on
generated labelled images; from it, the time of the profile's grid for one brand and for `--grid-models`
models (the grid's runs as the grid plans them: one run per BATCH_SIZE_PER_IMAGE with prefix sharing).
Random weights train every layer with BatchNorm, where pretrained ones freeze the stem and res2, so this is
an upper bound of the case study's step.

GPU utilisation is sampled every 0.1 s (NVML through `torch.cuda.utilization`, else `nvidia-smi`); peak
memory is `torch.cuda.max_memory_allocated` per phase.

Run: `python benchmarks/bench_gpu.py --images 400 --loop-images 200 --train-iters 10 --out results.json`;
CPU smoke: `--device cpu --profile smoke --arch tiny --images 4 --size 160x120`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
import torchvision

from creative_assets.detection.architectures import build_model
from creative_assets.detection.backend import CocoSplit, Predictions, TrialParams
from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.batch_rows import LoadedModel
from creative_assets.detection.batches import work_items
from creative_assets.detection.grid import training_groups
from creative_assets.detection.registry import get_backend, resolve_backend_name, resolve_device
from creative_assets.detection.runtime import seed_everything, torch_threads
from creative_assets.detection.torchvision_backend import CHECKPOINT_FORMAT, TorchvisionDetector
from creative_assets.layout import DataRoot
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives
from creative_assets.settings import PROFILES, Settings, build_settings
from creative_assets.tables.warehouse import read_detections

BRAND = "bench"
OBJECT = "logo"
VIDEO_ID = "video/clip.mp4"
TRAIN_IMAGES = 8
CALIBRATION_IMAGES = 4
# the case study's four brands held 19 models between them
CASE_STUDY_MODELS = 19


# ---------------------------------------------------------------------------------------------- data


def render_creative(seed: int, index: int, width: int, height: int) -> tuple[np.ndarray, list[list[int]]]:
    """A creative-like still (gradient, filled shapes, a line of text, light grain) and its shapes' boxes."""
    rng = np.random.default_rng([seed, index])
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    image = np.ascontiguousarray(np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)), np.uint8)
    boxes = []
    for _ in range(int(rng.integers(2, 6))):
        bw, bh = int(rng.integers(width // 16, width // 4)), int(rng.integers(height // 16, height // 4))
        x, y = int(rng.integers(0, width - bw)), int(rng.integers(0, height - bh))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + bw - 1, y + bh - 1), colour, -1)
        else:
            cv2.ellipse(image, (x + bw // 2, y + bh // 2), (bw // 2, bh // 2), 0, 0, 360, colour, -1)
        boxes.append([x, y, x + bw, y + bh])
    scale = height / 360
    cv2.putText(
        image, f"SALE -{10 * int(rng.integers(1, 6))}%", (width // 10, height - height // 8),
        cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, int(2 * scale)),
    )  # fmt: skip
    grain = rng.integers(0, 8, image.shape, dtype=np.uint8)
    return cv2.add(image, grain), boxes


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> None:
    """Encode `image` as a JPEG file."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())


def write_stills(folder: Path, count: int, width: int, height: int, seed: int) -> list[list[list[int]]]:
    """`count` JPEG creatives `000000.jpg`… in `folder` (encoded in parallel); their shapes' boxes."""

    def one(i: int) -> list[list[int]]:
        image, boxes = render_creative(seed, i, width, height)
        write_jpeg(folder / f"{i:06d}.jpg", image)
        return boxes

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, range(count)))


def write_video(path: Path, frames: int, width: int, height: int, seed: int, fps: int = 30) -> bool:
    """An MP4 (mp4v) of a shape moving over a creative; False when this OpenCV cannot write one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        return False
    background, _ = render_creative(seed, 10**6, width, height)
    side = max(8, height // 5)
    try:
        for f in range(frames):
            frame = background.copy()
            x = int((width - side) * f / max(1, frames - 1))
            cv2.rectangle(frame, (x, height // 3), (x + side, height // 3 + side), (30, 30, 220), -1)
            writer.write(frame)
    finally:
        writer.release()
    return path.is_file() and path.stat().st_size > 0


def write_training_split(folder: Path, width: int, height: int, seed: int) -> CocoSplit:
    """A small COCO split of generated stills whose shapes are boxes of the one class (for timing training)."""
    all_boxes = write_stills(folder / "images", TRAIN_IMAGES, width, height, seed + 1)
    images, annotations = [], []
    for i, boxes in enumerate(all_boxes):
        images.append({"id": i + 1, "file_name": f"{i:06d}.jpg", "width": width, "height": height})
        for x0, y0, x1, y1 in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": OBJECT}]}
    json_path = folder / "train.json"
    json_path.write_text(json.dumps(coco))
    return CocoSplit(json_path, folder / "images")


# ---------------------------------------------------------------------------------------------- model


def grid_middle(settings: Settings) -> TrialParams:
    """The grid's longest run at its middle BATCH_SIZE_PER_IMAGE: the trial the checkpoint claims to be."""
    sizes = settings.grid.batch_size_per_image
    return TrialParams(max(settings.grid.max_iter), sizes[len(sizes) // 2])


def calibrate_batchnorm(model: torch.nn.Module, backbone_input: torch.Tensor) -> None:
    """Estimate BatchNorm's running statistics on `backbone_input` (the rest of the model stays in eval mode).

    Random init leaves them at mean 0 / variance 1, so activations grow layer after layer: in detectron2's
    X101/R50 every foreground score then underflows to 0 and nothing is detected. With statistics of real
    inputs, as a trained model has, scores spread around 0.5 and there are detections to compare.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batch
        m.train()
    with torch.no_grad():
        model.backbone(backbone_input)
    model.eval()


def write_checkpoint(
    settings: Settings, backend: str, path: Path, calibration: list[np.ndarray], device: str
) -> None:
    """A randomly initialised one-class model (seeded; BatchNorm calibrated on `calibration`, BGR images, on
    `device`) saved as the backend's checkpoint."""
    params = grid_middle(settings)
    train = settings.train
    seed_everything(train.seed)
    if backend == "detectron2":
        from detectron2.modeling import build_model as build_detectron2_model

        from creative_assets.detection import detectron2_backend as d2

        cfg = d2.build_config(train, [OBJECT], params, path.parent, device="cpu")
        model = build_detectron2_model(cfg).to(device).eval()
        inputs = [{"image": torch.as_tensor(np.ascontiguousarray(i.transpose(2, 0, 1)))} for i in calibration]
        calibrate_batchnorm(model, model.preprocess_image(inputs).tensor)
        meta = {
            "format": d2.CHECKPOINT_FORMAT,
            "backend": backend,
            "architecture": train.architecture,
            "classes": [OBJECT],
            "train_settings": train.model_dump(mode="json"),
            "weights": "none",
            "device": "cpu",
            "cfg": cfg.dump(),
        }
        d2.save_checkpoint(model, path, meta, params)
        return
    model, note = build_model(train.architecture, 1, train, params.batch_size_per_image)
    model.to(device).eval()
    rgb = [
        torch.from_numpy(i[:, :, ::-1].copy()).permute(2, 0, 1).to(device).float() / 255 for i in calibration
    ]
    calibrate_batchnorm(model, model.transform(rgb)[0].tensors)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "backend": backend,
        "architecture": train.architecture,
        "classes": [OBJECT],
        "train_settings": train.model_dump(mode="json"),
        "weights": f"{note}, BatchNorm calibrated",
        "device": "cpu",
        "params": {"max_iter": params.max_iter, "batch_size_per_image": params.batch_size_per_image},
        "iteration": params.max_iter,
    }
    TorchvisionDetector(model, [OBJECT], "cpu", amp=False, meta=meta).save(path)


# ---------------------------------------------------------------------------------------------- measuring


class GpuUtilisation(threading.Thread):
    """Samples the GPU's utilisation (%) every `interval_s` while a phase runs; no samples on a CPU."""

    def __init__(self, device: str, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.samples: list[float] = []
        self.stopped = threading.Event()
        self.read = self._reader(device)

    @staticmethod
    def _reader(device: str):
        if device != "cuda":
            return None
        index = torch.cuda.current_device()
        try:
            torch.cuda.utilization(index)
            return lambda: float(torch.cuda.utilization(index))
        except Exception:  # no NVML bindings: ask nvidia-smi
            pass
        if shutil.which("nvidia-smi") is None:
            return None
        bus = getattr(torch.cuda.get_device_properties(index), "pci_bus_id", None)
        command = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        if bus:
            command += ["-i", str(bus)]
        return lambda: float(
            subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[0]
        )

    def run(self) -> None:
        if self.read is None:
            return
        while not self.stopped.wait(self.interval_s):
            try:
                self.samples.append(self.read())
            except (OSError, ValueError, IndexError, subprocess.CalledProcessError):
                return

    def stop(self) -> dict[str, float | int | None]:
        """Stop sampling; mean and median utilisation (None without samples) and the sample count."""
        self.stopped.set()
        self.join()
        s = self.samples
        return {
            "gpu_util_mean": statistics.fmean(s) if s else None,
            "gpu_util_median": statistics.median(s) if s else None,
            "gpu_util_samples": len(s),
        }


@contextmanager
def measured(device: str) -> Iterator[dict[str, Any]]:
    """Wall seconds, GPU utilisation and peak GPU memory of the block, filled into the yielded dict."""
    stats: dict[str, Any] = {}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sampler = GpuUtilisation(device)
    sampler.start()
    started = time.perf_counter()
    try:
        yield stats
    finally:
        if device == "cuda":
            torch.cuda.synchronize()
        stats["seconds"] = time.perf_counter() - started
        stats.update(sampler.stop())
        mib = 2**20
        on_gpu = device == "cuda"
        stats["peak_gpu_mem_mib"] = torch.cuda.max_memory_allocated() / mib if on_gpu else None
        stats["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved() / mib if on_gpu else None


# ---------------------------------------------------------------------------------------------- the two paths


def load_plain_model(checkpoint: Path, settings: Settings, device: str) -> torch.nn.Module:
    """The checkpoint's torchvision Faster R-CNN as plain torchvision code would hold it: fp32, eval mode."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model, _ = build_model(
        ckpt["architecture"],
        len(ckpt["classes"]),
        settings.train,
        int(ckpt["params"]["batch_size_per_image"]),
    )
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def torchvision_loop(model: torch.nn.Module, paths: Sequence[Path], device: str) -> list[Predictions]:
    """torchvision's per-image loop: `cv2.imread`, one fp32 forward pass per image, results to the host."""
    results = []
    for path in paths:
        image = cv2.imread(str(path))
        tensor = torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1).to(device).float().div_(255.0)
        with torch.inference_mode():
            out = model([tensor])[0]
        results.append(
            Predictions(
                boxes=out["boxes"].cpu().numpy().reshape(-1, 4),
                scores=out["scores"].cpu().numpy(),
                labels=(out["labels"] - 1).cpu().numpy(),
            )
        )
    return results


def run_loop(
    backend: str, checkpoint: Path, settings: Settings, paths: list[Path], warm: list[Path], device: str
) -> tuple[list[Predictions], dict[str, Any]]:
    """The loop on `paths` after a warm-up on `warm`; its predictions and measurements.

    Building the model is not timed. `default_predictor_loop` builds its `DefaultPredictor` inside, so its
    setup is measured by a call on no images and subtracted.
    """
    setup = 0.0
    if backend == "detectron2":
        from creative_assets.detection.detectron2_backend import default_predictor_loop

        def loop(items: list[Path]) -> list[Predictions]:
            return default_predictor_loop(checkpoint, items, 0.0, device)

        loop(warm)
        setup = time.perf_counter()
        loop([])
        setup = time.perf_counter() - setup
    else:
        model = load_plain_model(checkpoint, settings, device)

        def loop(items: list[Path]) -> list[Predictions]:
            return torchvision_loop(model, items, device)

        loop(warm)
    # on a CPU, the same torch threads as our detector uses (`train.cpu_threads`)
    with torch_threads(settings.train.cpu_threads if device == "cpu" else None), measured(device) as stats:
        predictions = loop(paths)
    stats["setup_seconds_subtracted"] = setup
    stats["seconds"] = max(stats["seconds"] - setup, 1e-9)
    return predictions, stats


def run_ours(
    root: DataRoot,
    items: pd.DataFrame,
    settings: Settings,
    checkpoint: Path,
    warm_items: pd.DataFrame,
    device: str,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`run_detection` as the asset calls it, after a warm-up run into another folder; detections and stats."""
    detector = get_backend(settings.train).load(checkpoint)
    model = LoadedModel(OBJECT, "bench", detector, {OBJECT: settings.thresholds.start})
    d = settings.detection
    options = {
        "batch_size": d.batch_size,
        "images_per_forward": d.images_per_forward,
        "score_floor": d.score_floor,
        "loader_workers": d.loader_workers,
    }
    run_detection(root, BRAND, warm_items, [model], root.warehouse("detections_warmup", BRAND), **options)
    out_dir = root.warehouse("detections", BRAND)
    with measured(device) as stats:
        run = run_detection(root, BRAND, items, [model], out_dir, **options)
    if len(run.errors):
        raise RuntimeError(f"our path reported errors: {run.errors.to_dict('records')}")
    stats["run_images_per_s"] = run.images_per_s
    stats["parts_written"] = run.parts_written
    return read_detections(out_dir), stats


# ---------------------------------------------------------------------------------------------- agreement


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4), boxes as x_min, y_min, x_max, y_max."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0, y0 = np.maximum(a[:, None, 0], b[None, :, 0]), np.maximum(a[:, None, 1], b[None, :, 1])
    x1, y1 = np.minimum(a[:, None, 2], b[None, :, 2]), np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_image(
    reference: Predictions, candidate: Predictions, top_k: int, iou_min: float, score_tol: float
) -> tuple[int, int, list[float]]:
    """Of `reference`'s top-k detections, how many `candidate` matches (same class, IoU ≥ `iou_min`,
    |Δscore| ≤ `score_tol`, each candidate used once, best IoU first); (matched, compared, |Δscore|s)."""
    order = np.argsort(-np.asarray(reference.scores), kind="stable")[:top_k]
    if len(order) == 0:
        return 0, 0, []
    iou = box_iou(np.asarray(reference.boxes)[order], candidate.boxes)
    used = np.zeros(len(candidate), dtype=bool)
    matched, diffs = 0, []
    for row, r in enumerate(order):
        diff = np.abs(np.asarray(candidate.scores, np.float64) - float(reference.scores[r]))
        ok = (
            (np.asarray(candidate.labels) == reference.labels[r])
            & (iou[row] >= iou_min)
            & (diff <= score_tol)
            & ~used
        )
        if ok.any():
            best = int(np.argmax(np.where(ok, iou[row], -1.0)))
            used[best] = True
            matched += 1
            diffs.append(float(diff[best]))
    return matched, len(order), diffs


def agreement(
    reference: Sequence[Predictions],
    candidate: Sequence[Predictions],
    top_k: int,
    iou_min: float = 0.9,
    score_tol: float = 0.02,
) -> dict[str, Any]:
    """How far `candidate` reproduces `reference`, image by image (see `match_image`)."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference images but {len(candidate)} candidate images")
    matched = compared = 0
    diffs: list[float] = []
    for ref, cand in zip(reference, candidate, strict=True):
        m, c, d = match_image(ref, cand, top_k, iou_min, score_tol)
        matched, compared, diffs = matched + m, compared + c, diffs + d
    return {
        "top_k": top_k,
        "iou_min": iou_min,
        "score_tol": score_tol,
        "images": len(reference),
        "compared": compared,
        "matched": matched,
        "fraction": matched / compared if compared else None,
        "mean_abs_score_diff": statistics.fmean(diffs) if diffs else None,
        "max_abs_score_diff": max(diffs) if diffs else None,
    }


def predictions_by_item(
    detections: pd.DataFrame, items: pd.DataFrame, classes: list[str]
) -> list[Predictions]:
    """Our detections table regrouped as one Predictions per work item, in the items' order."""
    frame = detections["frame_index"].fillna(-1).astype("int64")
    groups = {
        key: g for key, g in detections.groupby([detections["creative_id"].astype(str), frame], sort=False)
    }
    index = {name: i for i, name in enumerate(classes)}
    out = []
    for creative_id, frame_index in zip(items["creative_id"], items["frame_index"].fillna(-1), strict=True):
        g = groups.get((str(creative_id), int(frame_index)))
        if g is None:
            out.append(
                Predictions(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
            )
            continue
        out.append(
            Predictions(
                boxes=g[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64),
                scores=g["score"].to_numpy(np.float64),
                labels=g["class_name"].astype(str).map(index).to_numpy(np.int64),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- training


def time_training(
    root: Path, settings: Settings, iterations: int, warmup: int, width: int, height: int, seed: int
) -> dict[str, Any]:
    """s/iteration of the backend's `train` at the profile's settings and the grid time it implies."""
    split = write_training_split(root / "train_split", width, height, seed)
    backend = get_backend(settings.train)
    params = TrialParams(warmup + iterations, grid_middle(settings).batch_size_per_image)
    result = backend.train(
        split, [OBJECT], params, settings.train, root / "train_out", snapshot_iters=[warmup]
    )
    s_per_iter = (result.seconds[warmup + iterations] - result.seconds[warmup]) / iterations

    trials = [TrialParams(m, b) for m in settings.grid.max_iter for b in settings.grid.batch_size_per_image]
    share = settings.train.share_grid_prefix and backend.prefix_stable
    shared = sum(max(p.max_iter for p in g) for g in training_groups(trials, share))
    alone = sum(p.max_iter for p in trials)
    objects = len(settings.objects)
    return {
        "backend": backend.name,
        "iterations_timed": iterations,
        "warmup_iterations": warmup,
        "seconds_per_iter": s_per_iter,
        "ims_per_batch": settings.train.ims_per_batch,
        "min_size_train": list(settings.train.min_size_train),
        "max_size_train": settings.train.max_size_train,
        "batch_size_per_image": params.batch_size_per_image,
        "amp": settings.train.amp and resolve_device(settings.train.device) == "cuda",
        "grid_runs_per_object": len(training_groups(trials, share)),
        "grid_iterations_per_object": shared,
        "grid_iterations_per_object_unshared": alone,
        "objects_per_brand": objects,
        "brand_grid_hours": objects * shared * s_per_iter / 3600,
        "grid_models": None,
        "all_models_grid_hours": None,
    }


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; sizes and detection settings default to the profile's."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto | cuda | cpu")
    p.add_argument("--profile", choices=PROFILES, default="full", help="settings profile (default full)")
    p.add_argument("--arch", help="train.architecture (default: the profile's)")
    p.add_argument("--backend", choices=("auto", "torchvision", "detectron2"), default="auto")
    p.add_argument("--images", type=int, default=400, help="generated stills (our path runs them all)")
    p.add_argument("--loop-images", type=int, help="images the loop runs (default: all); video frames first")
    p.add_argument("--video-frames", type=int, default=60, help="frames of the MP4 (0: no video)")
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the creatives")
    p.add_argument("--min-size", type=int, help="MIN_SIZE_TEST (default: the profile's)")
    p.add_argument("--max-size", type=int, help="MAX_SIZE_TEST (default: the profile's)")
    p.add_argument("--images-per-forward", type=int, help="default: the profile's")
    p.add_argument("--loader-workers", type=int, help="default: the profile's")
    p.add_argument("--batch-size", type=int, help="creatives per committed part (default: the profile's)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="fp16 autocast (ours)")
    p.add_argument("--warmup", type=int, default=8, help="images each path sees before it is timed")
    p.add_argument("--top-k", type=int, default=20, help="loop detections per image compared")
    p.add_argument("--iou", type=float, default=0.9)
    p.add_argument("--score-tol", type=float, default=0.02)
    p.add_argument("--train-iters", type=int, default=0, help="timed training iterations (0: skip)")
    p.add_argument("--train-warmup", type=int, default=5, help="training iterations before timing")
    p.add_argument("--grid-models", type=int, default=CASE_STUDY_MODELS, help="models the grid total is for")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", help="keep the generated data root here (default: a temporary folder)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.images < 1 or args.warmup < 1 or args.top_k < 1 or args.video_frames < 0 or args.train_iters < 0:
        p.error("--images, --warmup and --top-k must be positive; --video-frames and --train-iters ≥ 0")
    if args.train_iters and args.train_warmup < 1:
        p.error("--train-warmup must be positive when --train-iters is set")
    return args


def bench_settings(args: argparse.Namespace, root: Path, device: str) -> Settings:
    """The profile's settings with this run's overrides (random weights, score floor 0, the device)."""
    train: dict[str, Any] = {"weights": "none", "device": device, "amp": args.amp, "seed": args.seed}
    for key, value in (
        ("architecture", args.arch),
        ("min_size_test", args.min_size),
        ("max_size_test", args.max_size),
    ):
        if value is not None:
            train[key] = value
    if args.backend != "auto":
        train["backend"] = args.backend
    detection: dict[str, Any] = {"score_floor": 0.0}
    for key, value in (
        ("images_per_forward", args.images_per_forward),
        ("loader_workers", args.loader_workers),
        ("batch_size", args.batch_size),
    ):
        if value is not None:
            detection[key] = value
    return build_settings(root, args.profile, {"train": train, "detection": detection})


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a table and return (and with `--out`, write) the results."""
    args = parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        base = Path(args.root) if args.root else Path(tmp)
        root = DataRoot(base / "data")
        settings = bench_settings(args, root.root, device)
        backend = resolve_backend_name(settings.train)
        results: dict[str, Any] = {
            "device": device,
            "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "profile": settings.profile,
            "backend": backend,
            "loop": "detectron2 DefaultPredictor" if backend == "detectron2" else "torchvision per-image",
            "architecture": settings.train.architecture,
            "weights": f"random (seed {args.seed}), BatchNorm statistics from {CALIBRATION_IMAGES} creatives",
            "image_size": [width, height],
            "min_size_test": settings.train.min_size_test,
            "max_size_test": settings.train.max_size_test,
            "amp": settings.train.amp and device == "cuda",
            "images_per_forward": settings.detection.images_per_forward,
            "loader_workers": settings.detection.loader_workers,
            "batch_size": settings.detection.batch_size,
            "score_floor": settings.detection.score_floor,
        }

        started = time.perf_counter()
        write_stills(root.creatives(BRAND) / "img", args.images, width, height, args.seed)
        video = args.video_frames > 0 and write_video(
            root.creatives(BRAND) / VIDEO_ID, args.video_frames, width, height, args.seed
        )
        generated = time.perf_counter() - started
        manifest, scan_errors = scan_creatives(root, BRAND)
        scanned = time.perf_counter() - started - generated
        extraction = extract_video_frames(root, BRAND, manifest, settings.frame_stride, settings.jpeg_quality)
        problems = pd.concat([scan_errors, extraction.errors], ignore_index=True)
        if len(problems):
            raise RuntimeError(f"the generated creatives did not ingest: {problems.to_dict('records')}")
        items = work_items(manifest, extraction.frames)
        frames = int((items["media_type"] == "video").sum())
        order = pd.concat([items[items["media_type"] == "video"], items[items["media_type"] == "image"]])
        loop_items = order.head(args.loop_images or len(items))
        results["images"] = {
            "stills": args.images,
            "video": VIDEO_ID if video else None,
            "video_frames_detected": frames,
            "ours": len(items),
            "loop": len(loop_items),
        }
        results["prep_seconds"] = {
            "generate": generated,
            "scan_creatives": scanned,
            "extract_video_frames": extraction.seconds,
        }

        checkpoint = base / "model" / "model.pth"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        calibration = [
            render_creative(args.seed, 2 * 10**6 + i, width, height)[0] for i in range(CALIBRATION_IMAGES)
        ]
        write_checkpoint(settings, backend, checkpoint, calibration, device)

        warm = items.head(args.warmup)
        loop_predictions, loop_stats = run_loop(
            backend,
            checkpoint,
            settings,
            [root.root / p for p in loop_items["path"]],
            [root.root / p for p in warm["path"]],
            device,
        )
        detections, our_stats = run_ours(root, items, settings, checkpoint, warm, device)
        for stats, n in ((loop_stats, len(loop_items)), (our_stats, len(items))):
            stats["images"] = n
            stats["images_per_s"] = n / stats["seconds"]
        loop_stats["detections"] = int(sum(len(p) for p in loop_predictions))
        our_stats["detections"] = len(detections)
        results["loop_path"], results["our_path"] = loop_stats, our_stats
        results["speedup"] = our_stats["images_per_s"] / loop_stats["images_per_s"]
        ours_on_loop_items = predictions_by_item(detections, loop_items, [OBJECT])
        results["agreement"] = agreement(
            loop_predictions, ours_on_loop_items, args.top_k, args.iou, args.score_tol
        )

        results["train"] = None
        # detection results first: a failure or timeout in training must not lose them
        print_detection(results)
        write_results(results, args.out)
        if args.train_iters:
            train = time_training(
                base, settings, args.train_iters, args.train_warmup, width, height, args.seed
            )
            train["grid_models"] = args.grid_models
            train["all_models_grid_hours"] = (
                args.grid_models * train["grid_iterations_per_object"] * (train["seconds_per_iter"] / 3600)
            )
            results["train"] = train
            print_training(train)
            write_results(results, args.out)
    return results


def write_results(results: dict[str, Any], out: str | None) -> None:
    """The results as JSON at `out` (nothing when None)."""
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_detection(r: dict[str, Any]) -> None:
    """The detection results as a few readable lines."""
    print(
        f"{r['device_name']} ({r['device']}), torch {r['torch']}, torchvision {r['torchvision']}; "
        f"{r['architecture']} ({r['backend']}, {r['weights']}), {r['image_size'][0]}x{r['image_size'][1]} → "
        f"MIN/MAX_SIZE_TEST {r['min_size_test']}/{r['max_size_test']}"
    )
    i = r["images"]
    print(
        f"images: {i['stills']} stills + {i['video_frames_detected']} video frames; loop on {i['loop']}, "
        f"ours on {i['ours']} ({r['images_per_forward']} per forward, {r['loader_workers']} loader workers, "
        f"amp {r['amp']})"
    )
    header = f"{'path':<34}{'img/s':>9}{'seconds':>9}{'GPU util %':>12}{'peak MiB':>10}{'detections':>12}"
    print(header)
    print("-" * len(header))
    for name, s in ((r["loop"] + " loop", r["loop_path"]), ("ours (run_detection)", r["our_path"])):
        print(
            f"{name:<34}{s['images_per_s']:>9.2f}{s['seconds']:>9.1f}{_fmt(s['gpu_util_mean'], '.0f'):>12}"
            f"{_fmt(s['peak_gpu_mem_mib'], '.0f'):>10}{s['detections']:>12}"
        )
    a = r["agreement"]
    print(f"speedup ours / loop: {r['speedup']:.2f}x")
    print(
        f"agreement with the fp32 loop: {a['matched']}/{a['compared']} = {_fmt(a['fraction'], '.4f')} of the top-{a['top_k']} "
        f"per image matched (IoU >= {a['iou_min']}, |score diff| <= {a['score_tol']}; "
        f"mean |diff| {_fmt(a['mean_abs_score_diff'], '.2e')}, max {_fmt(a['max_abs_score_diff'], '.2e')})"
    )


def print_training(t: dict[str, Any]) -> None:
    """The training timing and the grid time it implies, as one line."""
    print(
        f"training ({t['backend']}): {t['seconds_per_iter']:.3f} s/iteration (IMS_PER_BATCH {t['ims_per_batch']}, "
        f"MIN_SIZE_TRAIN {t['min_size_train']}, ROI batch {t['batch_size_per_image']}, amp {t['amp']}); "
        f"grid: {t['grid_runs_per_object']} runs, {t['grid_iterations_per_object']} iterations per object "
        f"({t['grid_iterations_per_object_unshared']} without prefix sharing) → one brand of "
        f"{t['objects_per_brand']} objects {t['brand_grid_hours']:.2f} h, {t['grid_models']} models "
        f"{t['all_models_grid_hours']:.2f} h (training only)"
    )


if __name__ == "__main__":
    main()
