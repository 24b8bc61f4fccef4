"""Does one round of queued labels beat the same number of random labels?

A synthetic brand is generated with every image labelled (the generator's truth), then most labels are hidden.
Creatives are split once (fixed by `--data-seed`) into test, valid and an unlabelled pool. For each seed:

1. `--initial` pool images, drawn at random, are the starting labels; a model M0 trains on them and its
   per-class thresholds are chosen on valid (the `optimal_thresholds` rule);
2. M0 detects on the pool; the labelling queue (`creative_assets.labels.queue`: uncertainty × impression
   share, temporal disagreement at ±stride, diverse selection) picks `--k` unlabelled images; a random draw
   picks `--k` others;
3. two models train from scratch, with the same training seed, on initial + queued and on initial + random;
4. each model's thresholds are chosen on valid and it is scored on test: presence accuracy (mean over the
   object's classes, at the valid threshold), the same accuracy weighted by the creatives' impression share,
   and COCO AP / AP50 from pycocotools.

Results per seed, then mean ± standard deviation over seeds and of the paired difference (queue − random).
Training uses the `demo` profile's detector (`tiny`, ~160 px) at `--iters` iterations, built for 2 CPU cores.

Run: `python benchmarks/bench_active_learning.py [--seeds 0 1 2 3 4 --initial 20 --k 20 --iters 400]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from creative_assets.demo.synthetic import generate_demo_data
from creative_assets.detection.backend import CocoSplit, Predictions, TrialParams
from creative_assets.detection.evaluation import coco_ap, load_ground_truth, max_scores
from creative_assets.detection.registry import backend_by_name
from creative_assets.detection.split_inference import predict_split
from creative_assets.detection.thresholds import optimal_thresholds
from creative_assets.labels.queue import brand_images, impression_weights, score_images, select_queue
from creative_assets.labels.resolve import build_label_set
from creative_assets.layout import DataRoot
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives
from creative_assets.settings import build_settings
from creative_assets.tables.mmm import load_impressions

BRAND = "bench"
CATEGORIES = ["logo", "product", "brand_cue", "face", "smile"]  # what the generator labels
CLASSES = ["logo", "product", "brand_cue"]  # one object, "branding", as in the smoke settings
STRIDE = 5
ARMS = ("initial", "queue", "random")
METRICS = ("accuracy", "weighted_accuracy", "AP", "AP50")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--initial", type=int, default=20, help="labelled pool images before the round")
    p.add_argument("--k", type=int, default=20, help="labels added by the round (queued or random)")
    p.add_argument("--iters", type=int, default=400, help="SOLVER.MAX_ITER of every training run (demo: 400)")
    p.add_argument("--images", type=int, default=160, help="still images of the synthetic brand")
    p.add_argument("--videos", type=int, default=4, help="videos (4 s at 10 fps, every 5th frame kept)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args()


# ------------------------------------------------------------------------------------------------ data


def prepare(root: DataRoot, args: argparse.Namespace) -> dict:
    """Generate the brand, extract frames, read the truth, split creatives into test / valid / pool."""
    generate_demo_data(
        root.root, seed=args.data_seed, brands=(BRAND,), labelled_images=args.images, unlabelled_images=0,
        labelled_videos=args.videos, unlabelled_videos=0, image_size=(160, 120), video_seconds=4.0,
        video_fps=10, frame_stride=STRIDE,
    )  # fmt: skip
    manifest, _ = scan_creatives(root, BRAND)
    frames = extract_video_frames(root, BRAND, manifest, STRIDE).frames
    truth = build_label_set(root, BRAND, manifest, frames, CATEGORIES)
    if len(truth.errors):
        raise RuntimeError(f"the generated labels do not import:\n{truth.errors.head()}")
    images = brand_images(manifest, frames)
    creatives = sorted(images["creative_id"].astype(str).unique())
    order = np.random.default_rng(args.data_seed).permutation(len(creatives))
    n_test, n_valid = round(0.25 * len(creatives)), round(0.15 * len(creatives))
    role = {creatives[i]: "test" for i in order[:n_test]}
    role |= {creatives[i]: "valid" for i in order[n_test : n_test + n_valid]}
    images["role"] = [role.get(str(c), "pool") for c in images["creative_id"]]
    impressions = load_impressions(root.root / "raw" / "impressions.csv")
    weights, _ = impression_weights(impressions[impressions["brand"] == BRAND], creatives)
    return {"images": images, "boxes": truth.annotations, "weights": weights}


def write_coco(root: DataRoot, path: Path, images: pd.DataFrame, boxes: pd.DataFrame) -> CocoSplit:
    """A COCO file of `images` with their truth boxes of CLASSES (file names relative to the data root)."""
    category_id = {c: i + 1 for i, c in enumerate(CLASSES)}
    coco_images, annotations = [], []
    by_image = {str(k): g for k, g in boxes[boxes["category"].isin(CLASSES)].groupby("image_path")}
    for image_id, im in enumerate(images.itertuples(index=False), start=1):
        coco_images.append({"id": image_id, "file_name": str(im.image_path), "width": int(im.width),
                            "height": int(im.height), "creative_id": str(im.creative_id)})  # fmt: skip
        group = by_image.get(str(im.image_path))
        for b in group.itertuples(index=False) if group is not None else []:
            w, h = float(b.x_max - b.x_min), float(b.y_max - b.y_min)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0, "area": w * h,
                                "category_id": category_id[str(b.category)], "bbox": [float(b.x_min),
                                float(b.y_min), w, h]})  # fmt: skip
    categories = [{"id": i, "name": c} for c, i in category_id.items()]
    path.write_text(json.dumps({"images": coco_images, "annotations": annotations, "categories": categories}))
    return CocoSplit(path, root.root)


# ------------------------------------------------------------------------------------------------ models


def train(root: DataRoot, split: CocoSplit, seed: int, args: argparse.Namespace, out: Path):
    """One `tiny` Faster R-CNN with the demo profile's solver, `--iters` iterations, seeded."""
    cfg = build_settings(root.root, "demo", {"train": {"seed": seed, "cpu_threads": args.threads}})
    backend = backend_by_name("torchvision", cfg.train)
    params = TrialParams(max_iter=args.iters, batch_size_per_image=64)
    result = backend.train(split, CLASSES, params, cfg.train, out)
    return backend.load(result.checkpoints[args.iters])


def thresholds_on_valid(detector, valid: CocoSplit, test: CocoSplit) -> tuple[dict[str, float], dict]:
    """Per-class thresholds chosen on valid, and the test predictions."""
    preds = {s: predict_split(detector, sp, score_floor=0.05) for s, sp in (("valid", valid), ("test", test))}
    gts = {s: load_ground_truth(sp.json_path) for s, sp in (("valid", valid), ("test", test))}
    values = build_settings(".", "demo").thresholds.values()
    table, _ = optimal_thresholds(gts["valid"], preds["valid"], gts["test"], preds["test"], values)
    return {str(r.class_name): float(r.threshold) for r in table.itertuples()}, preds["test"]


def score_on_test(
    thresholds: dict[str, float], preds: dict[int, Predictions], test: CocoSplit, weights: pd.Series
) -> dict[str, float]:
    """Presence accuracy (plain and impression-weighted) at the valid thresholds, and COCO AP / AP50."""
    gt = load_ground_truth(test.json_path)
    scores = max_scores(gt, preds)
    t = np.array([thresholds[c] for c in gt.classes])
    correct = ((scores >= t) == gt.presence).mean(axis=1)
    creative = pd.Series([json_creative(gt, i) for i in range(gt.n_images)])
    # each creative's share spread over its test images, so a video counts once, not once per frame
    per_image = creative.map(weights).fillna(0.0) / creative.map(creative.value_counts())
    ap = coco_ap(gt, preds)
    return {
        "accuracy": float(correct.mean()),
        "weighted_accuracy": float((per_image * correct).sum() / per_image.sum()),
        "AP": ap["AP"],
        "AP50": ap["AP50"],
    }


def json_creative(gt, row: int) -> str:
    """The creative id of a test image (`file_name` is the data-root path of a still or a frame)."""
    return gt.coco.imgs[int(gt.image_ids[row])]["creative_id"]


def detections_table(pool: pd.DataFrame, preds: dict[int, Predictions]) -> pd.DataFrame:
    """M0's predictions on the pool as detections rows (creative_id, frame_index, class_name, score)."""
    rows = []
    for image_id, p in preds.items():
        im = pool.iloc[image_id - 1]
        for score, label in zip(p.scores, p.labels, strict=True):
            rows.append((im["creative_id"], im["frame_index"], CLASSES[int(label)], float(score)))
    return pd.DataFrame(rows, columns=["creative_id", "frame_index", "class_name", "score"]).astype(
        {"frame_index": "Int64"}
    )


# ------------------------------------------------------------------------------------------------ run


def run_seed(root: DataRoot, data: dict, seed: int, args: argparse.Namespace, work: Path) -> dict:
    images, boxes, weights = data["images"], data["boxes"], data["weights"]
    folder = work / f"seed{seed}"
    folder.mkdir()
    test = write_coco(root, folder / "test.json", images[images["role"] == "test"], boxes)
    valid = write_coco(root, folder / "valid.json", images[images["role"] == "valid"], boxes)
    pool = images[images["role"] == "pool"].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    initial = set(pool["image_path"].iloc[rng.choice(len(pool), args.initial, replace=False)])
    m0 = train(root, write_coco(root, folder / "initial.json", pool[pool["image_path"].isin(initial)], boxes),
               seed, args, folder / "m0")  # fmt: skip
    thresholds, test_preds = thresholds_on_valid(m0, valid, test)
    results = {"initial": score_on_test(thresholds, test_preds, test, weights)}

    pool_split = write_coco(root, folder / "pool.json", pool, boxes.iloc[0:0])
    dets = detections_table(pool, predict_split(m0, pool_split, score_floor=0.2))
    scored = score_images(pool.drop(columns="role"), dets, thresholds, STRIDE, weights)
    queued = select_queue(scored, initial, args.k, max_frames_per_video=3, stride=STRIDE)
    rest = pool[~pool["image_path"].isin(initial)]
    drawn = set(rest["image_path"].iloc[rng.choice(len(rest), args.k, replace=False)])
    chosen = {"queue": set(queued["image_path"]), "random": drawn}
    info = {a: {"frames": int(pool[pool["image_path"].isin(s)]["frame_index"].notna().sum()),
                "impression_share": float(weights.reindex(pool[pool["image_path"].isin(s)]["creative_id"]
                                                          .astype(str).unique()).sum())}
            for a, s in chosen.items()}  # fmt: skip
    for arm, added in chosen.items():
        labelled = pool[pool["image_path"].isin(initial | added)]
        model = train(
            root, write_coco(root, folder / f"{arm}.json", labelled, boxes), seed, args, folder / arm
        )
        results[arm] = score_on_test(*thresholds_on_valid(model, valid, test), test, weights)
    return {"seed": seed, "results": results, "picked": info}


def summarise(runs: list[dict]) -> str:
    def spread(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    lines = [f"{'arm':<16}" + "".join(f"{m:>22}" for m in METRICS)]
    for arm in ARMS:
        lines.append(
            f"{arm:<16}" + "".join(f"{spread([r['results'][arm][m] for r in runs]):>22}" for m in METRICS)
        )
    diff = [[r["results"]["queue"][m] - r["results"]["random"][m] for r in runs] for m in METRICS]
    lines.append(f"{'queue - random':<16}" + "".join(f"{spread(d):>22}" for d in diff))
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_al_") as tmp:
        root = DataRoot(Path(tmp) / "data")
        data = prepare(root, args)
        roles = data["images"]["role"].value_counts().to_dict()
        print(
            f"images by role: {roles}; initial {args.initial}, k {args.k}, iters {args.iters}, seeds {args.seeds}"
        )
        for seed in args.seeds:
            t0 = time.monotonic()
            run = run_seed(root, data, seed, args, Path(tmp))
            runs.append(run)
            per_arm = "  ".join(
                f"{a}: acc {run['results'][a]['accuracy']:.3f} wacc {run['results'][a]['weighted_accuracy']:.3f} "
                f"AP {run['results'][a]['AP']:.3f}"
                for a in ARMS
            )
            print(
                f"seed {seed} ({time.monotonic() - t0:.0f} s): {per_arm}; picked {run['picked']}", flush=True
            )
    print()
    print(summarise(runs))
    print(f"\ntotal {time.monotonic() - start:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}, indent=1)
        )


if __name__ == "__main__":
    main()
