"""What loading the code location costs: wall time and peak RSS of `import creative_assets.definitions`.

Every `dagster asset materialize`, `dagster dev` reload and run worker pays this before any asset code runs,
so it is the floor under a no-change materialisation. Each tree is measured in fresh interpreters (median of
`--repeats`) that also report which heavy libraries the import pulled in.

A tree is a git revision of this repository (exported with `git archive` into a temporary folder, so an old
revision is measured as it was) or `.` for the working tree; `--trees main .` gives before/after in one run.
Run: `python benchmarks/bench_import.py [--trees main . --repeats 5]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "torch._dynamo", "cv2", "detectron2", "matplotlib", "pycocotools")

# Runs in the child: time the import, then report peak RSS and the heavy modules it left loaded.
PROBE = f"""
import json, resource, sys, time
start = time.perf_counter()
import creative_assets.definitions
seconds = time.perf_counter() - start
import creative_assets
print(json.dumps({{
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "loaded": [m for m in {HEAVY!r} if m in sys.modules],
    "package": creative_assets.__file__,
}}))
"""


def export_tree(revision: str, into: Path) -> Path:
    """The repository at `revision` as plain files under `into` (`.` is the working tree itself)."""
    if revision == ".":
        return REPO
    target = into / revision.replace("/", "_")
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def measure(tree: Path, repeats: int) -> dict:
    """Median seconds and peak RSS of the import over `repeats` fresh interpreters started in `tree`."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", PROBE],
            cwd=tree,
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if not runs[0]["package"].startswith(str(tree)):
        raise RuntimeError(f"imported {runs[0]['package']}, not the tree under {tree}")
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "loaded": runs[0]["loaded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trees", nargs="+", default=["main", "."], help="git revisions, or . for the work tree"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for revision in args.trees:
            results[revision] = measure(export_tree(revision, Path(tmp)), args.repeats)
            r = results[revision]
            print(
                f"{revision:>12}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB, "
                f"loaded {', '.join(r['loaded']) or 'none of ' + '/'.join(HEAVY)}"
            )
    if len(results) > 1:
        first, last = results[args.trees[0]], results[args.trees[-1]]
        print(
            f"{args.trees[-1]} vs {args.trees[0]}: {first['seconds'] / last['seconds']:.1f}x faster, "
            f"{first['peak_rss_mb'] / last['peak_rss_mb']:.1f}x less memory"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
