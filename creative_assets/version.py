"""The code version recorded in model lineage: package version + a hash of the package's source."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

__version__ = "0.1.0"

# The code version Dagster records with each materialisation. Bump an asset's number when a change to its code,
# or to the core it calls, changes its output for the same inputs: the UI then marks that asset and everything
# downstream of it stale. A refactor that keeps outputs equal keeps the number (no needless retraining).
ASSET_CODE_VERSIONS: dict[str, str] = {
    "creative_manifest": "2",
    "video_frames": "1",
    "labels": "1",
    "coco_datasets": "1",
    "grid_search": "2",
    "chosen_model": "3",
    "optimal_thresholds": "1",
    "detections": "2",
    "creative_features": "1",
    "mmm_features": "1",
    "mmm_panel": "1",
    "mmm_unmatched_creatives": "1",
    "labelling_queue": "1",
}


@lru_cache(maxsize=1)
def code_version() -> str:
    """`<version>+<sha256 of every .py file in the package, first 12 hex>`; changes when any code changes."""
    h = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"
