"""What a committed detection batch costs besides the models: its rows as a table, the errors rows and the
atomic Parquet commit (fsync included).

Small batches (the smoke profile commits every 4 images) pay this once per batch, so it is timed alone here, on
made-up predictions of 5 one-class models (20 boxes per image and model by default).

Run: `python benchmarks/bench_batch_overhead.py [--batches 200 --images 4 --boxes 20]`;
`PYTHONPATH=<another checkout>` times that checkout's code under the same script (the before/after comparison).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from creative_assets.detection.backend import Predictions
from creative_assets.detection.batch_parts import commit_batch, error_frame
from creative_assets.detection.batch_rows import BatchRows, LoadedModel
from creative_assets.detection.batches import WORK_ITEM_DTYPES
from creative_assets.detection.image_loader import DecodedImage

OBJECTS = ("logo", "product", "brand_cue", "face", "smile")


class Fixed:
    """Stands in for a detector: only its classes and names are read when rows are built."""

    backend = "bench"
    device = "cpu"

    def __init__(self, name: str) -> None:
        self.classes = [name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--images", type=int, default=4, help="images per batch")
    parser.add_argument("--boxes", type=int, default=20, help="boxes per image and model")
    args = parser.parse_args()

    models = [LoadedModel(o, f"m-{o}", Fixed(o), {o: 0.5}) for o in OBJECTS]
    items = pd.DataFrame(
        {
            "brand": "bench",
            "creative_id": [f"img/{i:06d}.jpg" for i in range(args.images)],
            "media_type": "image",
            "frame_index": pd.NA,
            "timestamp_s": pd.NA,
            "path": [f"creatives/bench/img/{i:06d}.jpg" for i in range(args.images)],
            "sha256": "0" * 64,
        }
    ).astype(WORK_ITEM_DTYPES)
    image = np.zeros((360, 640, 3), np.uint8)
    rng = np.random.default_rng(0)
    timings = {"rows": 0.0, "errors": 0.0, "commit": 0.0}
    rows_total = 0
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        out, errors_dir = Path(tmp) / "detections" / "brand=bench", Path(tmp) / "errors" / "brand=bench"
        for n in range(args.batches):
            rows = BatchRows(models, 0.2)
            for i in range(args.images):
                for k in range(len(models)):
                    boxes = rng.uniform(0, 300, (args.boxes, 4)).astype(np.float32)
                    boxes[:, 2:] += boxes[:, :2]
                    scores = rng.uniform(0, 1, args.boxes).astype(np.float32)
                    pred = Predictions(boxes, scores, np.zeros(args.boxes, np.int64))
                    rows.add(DecodedImage(position=i, image=image), k, pred)
            key = f"{n:024x}"
            started = time.perf_counter()
            # this checkout's way to a table: Arrow directly, or a pandas frame in older ones
            build = getattr(rows, "table", None) or rows.frame
            detections = build(items, key)
            timings["rows"] += time.perf_counter() - started
            started = time.perf_counter()
            errors = error_frame([], items, "bench")
            timings["errors"] += time.perf_counter() - started
            started = time.perf_counter()
            commit_batch(out, errors_dir, key, detections, errors)
            timings["commit"] += time.perf_counter() - started
            rows_total += len(detections)
    per_batch = {k: v / args.batches * 1e3 for k, v in timings.items()}
    print(
        f"{args.batches} batches of {args.images} images ({rows_total // args.batches} rows each): "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in per_batch.items())
        + f"; total {sum(per_batch.values()):.2f} ms a batch"
    )


if __name__ == "__main__":
    main()
