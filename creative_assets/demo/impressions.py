"""Synthetic daily impressions and spend per creative, the file MMM analysts join detections to."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from datetime import date, timedelta

import pandas as pd

from creative_assets.demo.scenes import rng_for

IMPRESSIONS_COLUMNS: tuple[str, ...] = ("date", "brand", "creative_id", "impressions", "spend", "channel")
IMPRESSIONS_START = date(2024, 1, 1)
IMPRESSIONS_DAYS = 56
CPM = {"display": 4.0, "social": 6.5, "video": 12.0}


def impressions_table(creative_ids: dict[str, Sequence[str]], seed: int = 0) -> pd.DataFrame:
    """Daily impressions and spend for each creative over its flight within 8 weeks (IMPRESSIONS_COLUMNS)."""
    rows: list[tuple[str, str, str, int, float, str]] = []
    for brand in sorted(creative_ids):
        rng = rng_for(seed, zlib.crc32(brand.encode("utf-8")), 3, 0)
        for creative_id in sorted(creative_ids[brand]):
            is_video = creative_id.startswith("videos/")
            channel = str(rng.choice(["video", "social"] if is_video else ["display", "social"]))
            start = int(rng.integers(0, IMPRESSIONS_DAYS - 14))
            length = int(rng.integers(14, IMPRESSIONS_DAYS - start + 1))
            base = float(rng.lognormal(math.log(4000.0), 0.6))
            cpm = CPM[channel] * float(rng.uniform(0.85, 1.15))
            for day in range(start, start + length):
                when = IMPRESSIONS_START + timedelta(days=day)
                weekly = 1.15 if when.weekday() >= 5 else 1.0
                count = int(rng.poisson(base * weekly))
                rows.append(
                    (when.isoformat(), brand, creative_id, count, round(count * cpm / 1000.0, 2), channel)
                )
    frame = pd.DataFrame(rows, columns=list(IMPRESSIONS_COLUMNS))
    for column in ("date", "brand", "creative_id", "channel"):
        frame[column] = frame[column].astype(pd.StringDtype())
    frame["impressions"] = frame["impressions"].astype("int64")
    frame["spend"] = frame["spend"].astype("float64")
    return frame
