"""Progress reporting for long asset steps: Dagster log lines, and tqdm bars when run from the CLI."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import dagster as dg
from tqdm import tqdm

TQDM_ENV = "CREATIVE_ASSETS_PROGRESS"  # the CLI sets it to "tqdm"


class StageProgress:
    """Callable `(done, total[, info])`: a log line every ~10 % (with rate and ETA) and an optional tqdm bar."""

    def __init__(
        self, context: dg.OpExecutionContext | dg.AssetExecutionContext, stage: str, unit: str = "it"
    ):
        self._log = context.log
        self._stage = stage
        self._unit = unit
        self._start = time.monotonic()
        self._next_log = 0.0
        self._bar: tqdm | None = None
        self._use_tqdm = os.environ.get(TQDM_ENV) == "tqdm"

    def __call__(self, done: int, total: int, info: dict | None = None) -> None:
        if self._use_tqdm:
            if self._bar is None:
                self._bar = tqdm(total=total, desc=self._stage, unit=self._unit, file=sys.stderr, leave=False)
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
        frac = done / total if total else 1.0
        if frac >= self._next_log or done == total:
            elapsed = time.monotonic() - self._start
            rate = done / elapsed if elapsed > 0 else 0.0
            eta = (total - done) / rate if rate > 0 else float("nan")
            extra = "".join(f", {k} {v:.4g}" for k, v in (info or {}).items() if isinstance(v, (int, float)))
            self._log.info(
                f"{self._stage}: {done}/{total} {self._unit} ({frac:.0%}), {rate:.1f} {self._unit}/s, "
                f"ETA {eta:.0f} s{extra}"
            )
            self._next_log = min(1.0, frac + 0.1)
        if done >= total and self._bar is not None:
            self._bar.close()
            self._bar = None


def stage_progress(context, stage: str, unit: str = "it") -> Callable[[int, int], None]:
    """A progress callback for one stage of an asset."""
    return StageProgress(context, stage, unit)
