"""Run the test brand's detection in its own process, slowly, so a test can kill it mid-run.

Usage: python detect_in_subprocess.py DATA_ROOT ITEMS_PARQUET OUT_DIR DELAY_S
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from creative_assets.detection.batch_detect import run_detection
from creative_assets.layout import DataRoot
from creative_assets_tests.support.colour_brand import BRAND, colour_models


def main(argv: list[str]) -> None:
    """Detect with the same settings as the tests' `detect` helper, each image delayed by DELAY_S."""
    data_root, items_file, out_dir, delay_s = argv
    run_detection(
        DataRoot(Path(data_root)),
        BRAND,
        pd.read_parquet(items_file),
        colour_models(delay_s=float(delay_s)),
        Path(out_dir),
        batch_size=3,
        images_per_forward=2,
        score_floor=0.2,
        loader_workers=1,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
