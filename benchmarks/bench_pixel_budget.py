"""Peak memory of a brand with one 20000×20000 PNG against the same brand without it (the pixel budget).

Each variant runs in a fresh process, which scans the brand (`scan_creatives`) and runs `run_detection` over
it with the DataLoader decoding ahead, and reports its peak RSS. The detector is a cheap stand-in (per-image
mean colour): model weights cost the same in both variants and would only dilute the ratio, so leaving them
out makes the comparison stricter. `--reference` adds what decoding that PNG by path with OpenCV costs (the
pipeline's former behaviour).

Run: `python benchmarks/bench_pixel_budget.py [--images 40 --side 20000 --reference]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

BRAND = "bench"


class MeanColour:
    """A detector stand-in: one box over the whole image, scored by its mean brightness."""

    backend = "bench"
    classes = ("logo",)

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list:
        from creative_assets.detection.backend import Predictions

        out = []
        for image in images:
            h, w = image.shape[:2]
            score = float(image.mean()) / 255.0
            out.append(
                Predictions(
                    boxes=np.array([[0, 0, w, h]], np.float32),
                    scores=np.array([score], np.float32),
                    labels=np.array([0], np.int64),
                )
            )
        return out


def make_brand(data: Path, images: int, side: int | None) -> None:
    """`images` 1280×720 JPEGs, and with `side` one black side×side PNG (about 1.2 MB at 20000)."""
    import cv2

    from creative_assets_tests.hostile.generator import png_of_zeros

    folder = data / "raw" / BRAND / "creatives"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(images):
        image = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"still_{i:03d}.jpg"), image)
    if side:
        (folder / "huge.png").write_bytes(png_of_zeros(side, side))


def measure(data: Path) -> dict:
    """In this process: scan and detect the brand; peak RSS and what the tables say."""
    from creative_assets.detection.batch_detect import run_detection
    from creative_assets.detection.batch_rows import LoadedModel
    from creative_assets.detection.batches import work_items
    from creative_assets.layout import DataRoot
    from creative_assets.media.manifest import scan_creatives

    root = DataRoot(data)
    manifest, errors = scan_creatives(root, BRAND)
    frames = _no_frames()
    run = run_detection(
        root,
        BRAND,
        work_items(manifest, frames),
        [LoadedModel("logo", "m", MeanColour(), {"logo": 0.5})],
        root.warehouse("detections", BRAND),
        batch_size=8,
        images_per_forward=4,
        score_floor=0.0,
        loader_workers=1,
    )
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "creatives": len(manifest),
        "manifest_errors": errors["reason"].tolist(),
        "detected_images": run.images,
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def reference(data: Path) -> dict:
    """In this process: what `cv2.imread` of the big PNG by path costs."""
    import cv2

    image = cv2.imread(str(data / "raw" / BRAND / "creatives" / "huge.png"))
    shape = None if image is None else list(image.shape)
    del image
    return {
        "shape": shape,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _no_frames():
    import pandas as pd

    return pd.DataFrame(columns=["brand", "creative_id", "frame_index", "timestamp_s", "path"])


def _child(mode: str, data: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(data)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--reference", action="store_true", help="also measure cv2.imread of the big PNG")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, data = args.child
        print(json.dumps(measure(Path(data)) if mode == "measure" else reference(Path(data))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        without, with_big = Path(tmp) / "without", Path(tmp) / "with"
        make_brand(without, args.images, None)
        make_brand(with_big, args.images, args.side)
        a, b = _child("measure", without), _child("measure", with_big)
        print(f"brand of {args.images} 1280x720 JPEGs:          peak RSS {a['peak_rss_mb']:8.1f} MB")
        print(f"same brand + one {args.side}x{args.side} PNG: peak RSS {b['peak_rss_mb']:8.1f} MB")
        print(f"ratio {b['peak_rss_mb'] / a['peak_rss_mb']:.2f} (target ≤ 1.5)")
        print(f"the PNG's errors row: {b['manifest_errors']}")
        if args.reference:
            r = _child("reference", with_big)
            print(
                f"reference, cv2.imread of that PNG by path: peak RSS {r['peak_rss_mb']:.1f} MB (shape {r['shape']})"
            )


if __name__ == "__main__":
    main()
