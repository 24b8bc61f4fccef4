"""What every detection executor shares around its batches: the checks and plan before, the progress and ETA
log during, the stale-part clean-up and summary after.

An executor (`batch_detect.run_detection` in this process, `execution.ray_detect.run_detection_ray` on Ray)
calls `open_run`, computes each pending batch its own way and tells the returned `RunLog` what became of it,
then calls `RunLog.finish`. The logs, progress and the `DetectionRun` it returns are therefore the same
whatever computed the batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from creative_assets.atomic import remove_stale_temporaries
from creative_assets.detection.batch_parts import errors_folder, retire_stale_parts
from creative_assets.detection.batches import (
    Batch,
    ModelDescriptor,
    check_models,
    model_fingerprint,
    plan_batches,
    sorted_items,
)
from creative_assets.detection.failure_policy import check_retries
from creative_assets.settings import validate_brand
from creative_assets.tables.schemas import DETECTION_ERRORS, DETECTIONS
from creative_assets.tables.warehouse import count_rows, ensure_schema_part, part_path, read_detection_errors


@dataclass
class DetectionRun:
    """What one call of `run_detection` did."""

    batches: int
    parts_written: int
    parts_reused: int
    parts_removed: int
    temporaries_removed: int
    parts_kept_unseen: int  # stale parts kept for rows of creatives not seen but not removed
    rows: int  # detections in the brand's table after the run
    rows_written: int  # detections in the parts written by this run
    errors: pd.DataFrame  # every error of the current batch set, reused batches included
    images: int  # images decoded by this run
    seconds: float
    images_per_s: float


def format_duration(seconds: float) -> str:
    """Seconds as a short human duration (`1h02m`, `3m05s`, `12s`)."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


@dataclass
class RunPlan:
    """What a detection run has to do: its folders, the batches, and which of them are not committed yet."""

    out_dir: Path
    errors_dir: Path
    temporaries: int  # left by a killed run, removed
    items: pd.DataFrame
    batches: list[Batch]
    pending: list[Batch]
    total: int  # images in all batches
    done: int  # images in committed batches
    removed: Collection[str] | None = None  # creatives the manifest says were removed (None: all absent)

    def summary(self, brand: str, models: int) -> str:
        """One log line describing the plan."""
        return (
            f"detections {brand}: {len(self.batches)} batches ({len(self.batches) - len(self.pending)} already "
            f"committed, {len(self.pending)} to run), {self.total} images, {models} models"
        )

    def finish(self, written: int, rows_written: int, images: int, started: float) -> DetectionRun:
        """Remove parts of batches no longer planned (only now, with every current batch committed)."""
        keys = {b.key for b in self.batches}
        current = set(self.items["creative_id"].astype(str))
        removed, kept = retire_stale_parts(self.out_dir, self.errors_dir, keys, current, self.removed)
        ensure_schema_part(self.errors_dir, DETECTION_ERRORS.arrow_schema())
        ensure_schema_part(self.out_dir, DETECTIONS.arrow_schema())  # a brand without batches: zero rows
        seconds = time.perf_counter() - started
        return DetectionRun(
            batches=len(self.batches),
            parts_written=written,
            parts_reused=len(self.batches) - len(self.pending),
            parts_removed=removed,
            parts_kept_unseen=kept,
            temporaries_removed=self.temporaries,
            rows=count_rows(self.out_dir),
            rows_written=rows_written,
            errors=read_detection_errors(self.errors_dir),
            images=images,
            seconds=seconds,
            images_per_s=images / seconds if seconds > 0 else 0.0,
        )


def plan_run(
    brand: str,
    items: pd.DataFrame,
    out_dir: Path,
    errors_dir: Path | None,
    batch_size: int,
    fingerprint: str,
    removed: Collection[str] | None = None,
) -> RunPlan:
    """Prepare the folders (clearing a killed run's temporaries) and plan the batches still to run."""
    out_dir = Path(out_dir).resolve()
    errors_dir = Path(errors_dir).resolve() if errors_dir is not None else errors_folder(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    errors_dir.mkdir(parents=True, exist_ok=True)
    temporaries = remove_stale_temporaries(out_dir) + remove_stale_temporaries(errors_dir)
    items = sorted_items(items)
    other_brands = sorted(set(items["brand"].dropna()) - {brand})
    if other_brands:
        raise ValueError(f"work items of brand {brand!r} include other brands: {', '.join(other_brands)}")
    batches = plan_batches(items, batch_size, fingerprint)
    pending = [b for b in batches if not part_path(out_dir, b.key).is_file()]
    total = len(items)
    return RunPlan(
        out_dir,
        errors_dir,
        temporaries,
        items,
        batches,
        pending,
        total,
        total - sum(b.images for b in pending),
        removed,
    )


def check_run_arguments(brand: str, images_per_forward: int, max_retries: int) -> None:
    """The argument checks every executor makes before it loads anything."""
    validate_brand(brand)
    if images_per_forward <= 0:
        raise ValueError(f"images_per_forward must be positive, got {images_per_forward}")
    check_retries(max_retries)


# Each log line of an asset is an event written to the Dagster instance (2–4 ms each on 2 cores); batches of a
# few images finish several times a second, so their lines are thinned to one per interval (failures and the
# last batch are always logged; the progress callback still sees every batch).
BATCH_LINE_INTERVAL_S = 5.0


@dataclass
class RunLog:
    """Progress, per-batch log lines with rate and ETA, and the counts a run reports, for any executor."""

    brand: str
    plan: RunPlan
    log: Callable[[str], None] | None = None
    progress: Callable[[int, int], None] | None = None
    done: int = 0  # images done: reused batches, finished batches and the current batch so far
    computed: int = 0  # images of the batches this run finished (committed or failed)
    written: int = 0  # parts committed by this run
    failed: int = 0  # batches that failed after their retries
    rows_written: int = 0
    finished: int = 0  # batches this run finished (committed or failed)
    started: float = field(default_factory=time.perf_counter)
    last_line: float = -math.inf  # when the last batch line was logged

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)

    def show(self, done: int) -> None:
        """Report `done` of the plan's images to the progress callback (also mid-batch)."""
        self.done = done
        if self.progress is not None:
            self.progress(done, self.plan.total)

    def batch_committed(self, images: int, detections: int, errors: int) -> None:
        self.written += 1
        self.rows_written += detections
        self._finished(images)
        now = time.perf_counter()
        if self.finished < len(self.plan.pending) and now - self.last_line < BATCH_LINE_INTERVAL_S:
            return  # small, fast batches: one line per interval and the last one, not one per batch
        self.last_line = now
        elapsed = now - self.started
        rate = self.computed / elapsed if elapsed > 0 else 0.0
        eta = format_duration((self.plan.total - self.done) / rate) if rate > 0 else "?"
        self.say(
            f"detections {self.brand}: batch {self.finished}/{len(self.plan.pending)} committed ({images} "
            f"images, {detections} detections, {errors} errors); {self.done}/{self.plan.total} images, "
            f"{rate:.1f} images/s, ETA {eta}"
        )

    def batch_failed(self, images: int, attempts: int, reason: str) -> None:
        self.failed += 1
        self._finished(images)
        self.say(
            f"detections {self.brand}: batch {self.finished}/{len(self.plan.pending)} failed after {attempts} "
            f"attempts: {reason}"
        )

    def within_batch(self, images: int) -> None:
        """Progress inside the batch being computed: `images` of it done so far."""
        self.show(self.plan.done + self.computed + images)

    def _finished(self, images: int) -> None:
        self.finished += 1
        self.computed += images
        self.show(self.plan.done + self.computed)

    def finish(self, run_started: float) -> DetectionRun:
        """Retire stale parts (every current batch is committed now) and log the run's summary."""
        result = self.plan.finish(
            written=self.written, rows_written=self.rows_written, images=self.computed, started=run_started
        )
        self.say(
            f"detections {self.brand}: done in {format_duration(result.seconds)}; {result.parts_written} parts "
            f"written, {result.parts_reused} reused, {result.parts_removed} stale removed, "
            f"{result.parts_kept_unseen} kept for creatives not seen but not removed, {self.failed} failed; "
            f"{result.rows} detections, {len(result.errors)} errors"
        )
        return result


def open_run(
    brand: str,
    items: pd.DataFrame,
    models: Sequence[ModelDescriptor],
    out_dir: Path,
    errors_dir: Path | None,
    batch_size: int,
    score_floor: float,
    removed: Collection[str] | None,
    log: Callable[[str], None] | None,
    progress: Callable[[int, int], None] | None,
) -> RunLog:
    """Check the models, plan the batches still to run, and log the plan (after `check_run_arguments`)."""
    check_models(models)
    plan = plan_run(
        brand, items, out_dir, errors_dir, batch_size, model_fingerprint(models, score_floor), removed
    )
    run = RunLog(brand, plan, log, progress)
    run.say(plan.summary(brand, len(models)))
    run.show(plan.done)
    return run
