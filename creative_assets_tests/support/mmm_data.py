"""A seeded impressions file and creative features for MMM tests: several brands, channels and weeks, gaps,
videos with and without early branding, and creatives the features do not know."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

OBJECTS = ("logo", "product")
CHANNELS = ("Paid Social", "TV", "search")


@dataclass
class MMMData:
    """`impressions_csv` (text of raw/impressions.csv) and the `features` every known creative has."""

    impressions_csv: str
    features: pd.DataFrame


def _features(rng: np.random.Generator, brand: str, creatives: int) -> pd.DataFrame:
    rows = []
    for i in range(creatives):
        video = i % 2 == 1
        row = {
            "brand": brand,
            "creative_id": f"{'vid' if video else 'img'}/{brand}_{i}.{'mp4' if video else 'png'}",
            "media_type": "video" if video else "image",
        }
        for o in OBJECTS:
            present = bool(rng.random() < 0.6)
            first_seen = float(rng.uniform(0, 8)) if (present and video) else None
            row[f"{o}_present"] = present
            row[f"{o}_in_first_3s"] = first_seen is not None and first_seen < 3
            row[f"{o}_in_first_5s"] = first_seen is not None and first_seen < 5
            if not video or i == creatives - 1:  # the last video has no sampled frames
                row[f"{o}_frame_share"] = None
            else:
                row[f"{o}_frame_share"] = round(float(rng.uniform(0.05, 1)), 3) if present else 0.0
        rows.append(row)
    frame = pd.DataFrame(rows).astype({"brand": "string", "creative_id": "string", "media_type": "string"})
    return frame.astype({f"{o}_frame_share": "Float64" for o in OBJECTS})


def mmm_data(
    seed: int = 7,
    brands: tuple[str, ...] = ("acme", "globex"),
    weeks: int = 10,
    creatives: int = 6,
    fractional: bool = False,
) -> MMMData:
    """Daily rows over `weeks` weeks from Wed 2024-01-03, with a week off per brand and one unknown creative."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-03")
    lines = ["date,brand,creative_id,impressions,spend,channel"]
    features = []
    for b, brand in enumerate(brands):
        feats = _features(rng, brand, creatives)
        features.append(feats)
        ids = [*feats["creative_id"], f"img/{brand}_unknown.png"]
        quiet_week = 2 + b  # each brand has one week with no impressions at all
        # Brands start on different days so neither starts the file's first week alone.
        for day in range(b * 3, weeks * 7):
            if day // 7 == quiet_week or rng.random() < 0.3:
                continue
            date = (start + pd.Timedelta(days=day)).strftime("%Y-%m-%d")
            for creative in rng.choice(ids, size=int(rng.integers(1, 4)), replace=False):
                channel = CHANNELS[int(rng.integers(len(CHANNELS)))]
                amount = int(rng.integers(10, 5000))
                shown = f"{amount + 0.25:.2f}" if fractional and rng.random() < 0.2 else str(amount)
                spend = f"{amount * rng.uniform(0.002, 0.02):.2f}"
                lines.append(f"{date},{brand},{creative},{shown},{spend},{channel}")
    return MMMData("\n".join(lines) + "\n", pd.concat(features, ignore_index=True))
