"""Stage costs against the number of creatives: wall time and peak RSS per stage at 1k / 5k / 20k small stills.

Each stage runs in its own fresh process (so its peak RSS is its own, import included) on the `smoke`
profile, over one generated brand of small JPEG stills (no videos, so there is no frames stage):
- `manifest`: `scan_creatives` with no previous manifest (decode and hash every file);
- `manifest_again`: the no-change re-run, as the asset does it (given the committed manifest where the tree's
  `scan_creatives` takes one, else a full scan again);
- `materialize_manifest`: a whole no-change `creative_manifest` materialisation in a new process, as the CLI
  runs it: Python start, loading the code location, Dagster, the scan, the warehouse write (wall time);
- `detections`: `run_detection` with one object's model (the smoke profile's `tiny` Faster R-CNN, random
  init, seeded) over every still, in the smoke profile's batches; `detections_again` is its no-change re-run;
- `features`: `creative_features` from the committed detections, as the tree's asset does it (the whole
  table read into pandas, or the folder handed to the core).
`--trees main .` measures a git revision (exported with `git archive`) and the working tree on the same files;
detections run once, in the last tree, and both trees' features read that table. The summary fits
seconds = a + b·creatives per stage and extrapolates to `--extrapolate` creatives.

Run: `nice python benchmarks/bench_scale.py [--counts 1000 5000 20000 --trees main . --out scale.json]`;
`--keep DIR --stages features` re-measures one stage on the data roots (and detections) a kept run left.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import export_tree  # noqa: E402  (the sibling script's tree export)

BRAND = "bench"
OBJECT = "logo"
SIZE = (96, 72)  # small stills: the cost per creative is the pipeline's, not the pixels'

# The child: run one stage in this process and print one JSON line: seconds of the stage's own call (after
# imports and model building; for features, reading the table as the asset does is part of it), peak RSS, rows.
CHILD = r"""
import inspect, json, resource, sys, time
from pathlib import Path
import pandas as pd

stage, data, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
BRAND, OBJECT = "bench", "logo"
from creative_assets.layout import DataRoot
from creative_assets.settings import build_settings
root = DataRoot(data)
settings = build_settings(data, "smoke")
manifest_file = work / "manifest.parquet"
started = time.perf_counter()
rows = 0

if stage in ("manifest", "manifest_again"):
    from creative_assets.media.manifest import scan_creatives
    previous = pd.read_parquet(manifest_file) if stage == "manifest_again" else None
    started = time.perf_counter()
    if previous is not None and "previous" in inspect.signature(scan_creatives).parameters:
        manifest, errors = scan_creatives(root, BRAND, previous=previous)
    else:
        manifest, errors = scan_creatives(root, BRAND)
    rows = len(manifest)
    if stage == "manifest":
        manifest.to_parquet(manifest_file)
elif stage == "materialize_manifest":
    import dagster as dg
    from creative_assets.definitions import defs, local_resources
    from creative_assets.partitions import BRAND_PARTITIONS_NAME
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, [BRAND])
    asset = defs.get_assets_def(dg.AssetKey("creative_manifest"))
    started = time.perf_counter()
    result = dg.materialize([asset], partition_key=BRAND, instance=instance,
                            resources=local_resources(str(data), "smoke"))
    assert result.success
    from creative_assets.tables.warehouse import count_rows
    rows = count_rows(root.warehouse("creative_manifest", BRAND))
elif stage in ("detections", "detections_again"):
    import torch
    from creative_assets.detection.architectures import build_model
    from creative_assets.detection.batch_detect import run_detection
    try:  # batch_detect was split by concept; older revisions define everything in it
        from creative_assets.detection.batch_rows import LoadedModel
        from creative_assets.detection.batches import work_items
    except ImportError:
        from creative_assets.detection.batch_detect import LoadedModel, work_items
    from creative_assets.detection.torchvision_backend import TorchvisionDetector
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, _ = build_model(settings.train.architecture, 1, settings.train, batch_size_per_image=32)
    detector = TorchvisionDetector(model, [OBJECT], "cpu", amp=False, meta={})
    items = work_items(pd.read_parquet(manifest_file), pd.DataFrame(columns=["brand", "creative_id", "frame_index", "timestamp_s", "path"]))
    det = settings.detection
    started = time.perf_counter()
    run = run_detection(root, BRAND, items, [LoadedModel(OBJECT, "bench0", detector, {OBJECT: 0.5})],
                        root.warehouse("detections", BRAND), batch_size=det.batch_size,
                        images_per_forward=det.images_per_forward, score_floor=det.score_floor,
                        loader_workers=det.loader_workers)
    rows = run.rows
elif stage == "features":
    from creative_assets.tables.features import creative_features
    from creative_assets.tables.warehouse import read_table
    folder = root.warehouse("detections", BRAND)
    frames = pd.DataFrame({"brand": pd.Series(dtype="string"), "creative_id": pd.Series(dtype="string")})
    manifest = pd.read_parquet(manifest_file)
    started = time.perf_counter()
    if "batch_rows" in inspect.signature(creative_features).parameters:
        detections = folder
    else:
        detections = read_table(folder)
    features = creative_features(manifest, detections, frames, [OBJECT])
    rows = len(features)
else:
    raise SystemExit(f"unknown stage {stage}")

print(json.dumps({"stage": stage, "seconds": time.perf_counter() - started, "rows": rows,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_stills(data: Path, count: int) -> None:
    """`count` small JPEGs in 10 folders under the brand's creatives, each with a few coloured boxes."""
    import cv2

    rng = np.random.default_rng(count)
    width, height = SIZE
    creatives = data / "raw" / BRAND / "creatives"
    for i in range(count):
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        for _ in range(2):
            x, y = int(rng.integers(0, width - 30)), int(rng.integers(0, height - 30))
            colour = tuple(int(c) for c in rng.integers(80, 256, 3))
            cv2.rectangle(image, (x, y), (x + 25, y + 20), colour, -1)
        path = creatives / f"set{i % 10}" / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        path.write_bytes(encoded.tobytes())


def run_stage(tree: Path, stage: str, data: Path, work: Path) -> dict:
    """One stage in a fresh interpreter whose imports come from `tree`; adds the process's wall time."""
    env = {**os.environ, "PYTHONPATH": str(tree), "CREATIVE_ASSETS_PROFILE": "smoke"}
    env.pop("CREATIVE_ASSETS_DATA", None)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", CHILD, stage, str(data), str(work)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"{stage} in {tree} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def fit(counts: list[int], seconds: list[float], at: int) -> tuple[float, float, float]:
    """(fixed s, s per 1k creatives, predicted s at `at`) of a least-squares line through the points."""
    slope, intercept = np.polyfit(np.asarray(counts, float), np.asarray(seconds, float), 1)
    return float(intercept), float(slope * 1000), float(intercept + slope * at)


STAGES = ("manifest", "manifest_again", "materialize_manifest", "detections", "detections_again", "features")


def stage_plan(trees: list[str], stages: list[str]) -> list[tuple[str, str, str]]:
    """(tree, stage, label) in running order. A Dagster run's first materialisation (with this tree's code) is
    not the no-change one, so it is labelled apart and left out of the summary; detections run in the last
    tree only."""
    plan = []
    for name in trees:
        plan += [(name, s, s) for s in ("manifest", "manifest_again") if s in stages]
        if "materialize_manifest" in stages:
            plan += [
                (name, "materialize_manifest", "materialize_manifest (first)"),
                (name, "materialize_manifest", "materialize_manifest"),
            ]
    plan += [(trees[-1], s, s) for s in ("detections", "detections_again") if s in stages]
    plan += [(name, "features", "features") for name in trees if "features" in stages]
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument(
        "--trees", nargs="+", default=["main", "."], help="git revisions, or . for the work tree"
    )
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--extrapolate", type=int, default=50_000)
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep data roots here (a later run with --stages reuses them)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="*",
        default=[],
        help="earlier runs' --out files to summarise with this one",
    )
    args = parser.parse_args()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        base = args.keep or Path(tmp)
        trees = {t: export_tree(t, Path(tmp) / "trees") for t in args.trees}
        for count in args.counts:
            data = base / f"data{count}"
            if not (data / "raw").exists():
                started = time.perf_counter()
                make_stills(data, count)
                print(f"\n{count} stills generated in {time.perf_counter() - started:.0f} s", flush=True)
            for name, stage, label in stage_plan(args.trees, args.stages):
                work = base / f"work{count}_{name.replace('/', '_')}"
                work.mkdir(exist_ok=True)
                if stage != "manifest" and not (work / "manifest.parquet").exists():
                    # later stages read the manifest the last tree's scan wrote
                    last = base / f"work{count}_{args.trees[-1].replace('/', '_')}"
                    (work / "manifest.parquet").write_bytes((last / "manifest.parquet").read_bytes())
                r = run_stage(trees[name], stage, data, work)
                r.update(tree=name, creatives=count, stage=label)
                results.append(r)
                print(
                    f"{count:>6} {name:>8} {label:<28} {r['seconds']:8.2f} s in stage "
                    f"{r['process_s']:8.2f} s process  peak RSS {r['peak_rss_mb']:7.0f} MB  rows {r['rows']}",
                    flush=True,
                )
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    for earlier in args.merge:
        results += json.loads(earlier.read_text())
    summarise(results, sorted({r["creatives"] for r in results}), args.extrapolate)


def summarise(results: list[dict], counts: list[int], at: int) -> None:
    """Per tree and stage: seconds and peak RSS at each count, growth exponent, linear fit, extrapolation."""
    if len(counts) < 2:
        return
    print(f"\nstage costs (process wall s for the Dagster run, stage s otherwise); fit s = a + b·n; at {at}:")
    latest: dict[tuple[str, str, int], dict] = {}
    for r in results:  # this run's results come first and win over merged ones
        latest.setdefault((r["tree"], r["stage"], r["creatives"]), r)
    keys = sorted({(tree, stage) for tree, stage, _ in latest if "(first)" not in stage})
    for tree, stage in keys:
        rows = sorted((r for k, r in latest.items() if k[:2] == (tree, stage)), key=lambda r: r["creatives"])
        if len(rows) < 2:
            continue
        measure = "process_s" if stage.startswith("materialize") else "seconds"
        seconds = [r[measure] for r in rows]
        ns = [r["creatives"] for r in rows]
        a, per_k, predicted = fit(ns, seconds, at)
        growth = np.log(seconds[-1] / seconds[0]) / np.log(ns[-1] / ns[0]) if seconds[0] > 0 else float("nan")
        rss = [r["peak_rss_mb"] for r in rows]
        print(
            f"  {tree:>8} {stage:<22} s {' / '.join(f'{s:.1f}' for s in seconds):<24} "
            f"RSS MB {' / '.join(f'{m:.0f}' for m in rss):<18} growth n^{growth:.2f}  "
            f"a {a:.1f} s + {per_k:.2f} s/1k  -> {predicted:.0f} s at {at}"
        )


if __name__ == "__main__":
    main()
