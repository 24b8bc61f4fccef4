"""Resumable, batched, crash-safe detection over every still image and extracted video frame of a brand, in
this process.

The work items are cut into batches of whole creatives (`batches`: a video's frames stay with their video, and
a batch's key depends only on its creatives and the models). Each finished batch is committed atomically as
one Parquet part (`batch_parts`), so a killed run resumes where it stopped with nothing lost or duplicated.
The checks, plan, progress and summary are those of every executor (`batch_runs`); `execution.ray_detect`
computes the same batches on Ray.

Each image is decoded once for all models, ahead of the models by a DataLoader; the models see chunks of
`images_per_forward` images (`batch_rows`). Memory holds the decode-ahead chunks and the rows of one batch,
never more, so it does not grow with the number of creatives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pandas as pd

from creative_assets.detection.batch_parts import commit_batch, commit_failed_batch, error_frame
from creative_assets.detection.batch_rows import (
    BatchRows,
    DeferredModels,
    LoadedModel,
    described_models,
    start_chunk,
)
from creative_assets.detection.batch_runs import DetectionRun, check_run_arguments, open_run
from creative_assets.detection.failure_policy import DEFAULT_MAX_RETRIES, reason_of
from creative_assets.detection.image_loader import ImageFiles, image_chunks
from creative_assets.detection.model_threads import ModelThreads, large_on_cpu
from creative_assets.layout import DataRoot
from creative_assets.media.decode import DEFAULT_MAX_MEGAPIXELS

T = TypeVar("T")


def run_detection(
    root: DataRoot,
    brand: str,
    items: pd.DataFrame,
    models: Sequence[LoadedModel] | DeferredModels,
    out_dir: Path,
    *,
    batch_size: int,
    images_per_forward: int,
    score_floor: float,
    loader_workers: int,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    errors_dir: Path | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    removed: Collection[str] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    model_threads: int | None = None,
) -> DetectionRun:
    """Run every model on every work item of `brand`, committing one Parquet part per batch (resumable).

    `removed`: the creatives the manifest says were removed; committed rows of other absent creatives are
    kept (see "Stale parts and absence" in `batch_parts`). `DeferredModels` are loaded only when a batch is
    pending. `model_threads`: CPU threads running the models side by side (`model_threads`; None = every
    usable core; always 1 on a GPU).
    """
    started = time.perf_counter()
    check_run_arguments(brand, images_per_forward, max_retries)
    described = described_models(models)
    run = open_run(
        brand, items, described, out_dir, errors_dir, batch_size, score_floor, removed, log, progress
    )
    plan = run.plan
    if plan.pending:
        models = models.loaded() if isinstance(models, DeferredModels) else list(models)
        chunks = [
            [
                list(range(s, min(s + images_per_forward, b.stop)))
                for s in range(b.start, b.stop, images_per_forward)
            ]
            for b in plan.pending
        ]
        detectors = [m.detector for m in models]
        if large_on_cpu(detectors):
            # decoding is nothing beside a large model on a CPU, and loader processes only took cores from it
            # (X101 on 2 cores: 131 s with 4 loader workers, 101.5 s decoding here)
            loader_workers = 0
        dataset = ImageFiles(root, plan.items["path"].tolist(), max_megapixels)
        decoded = iter(
            image_chunks(dataset, (c for batch_chunks in chunks for c in batch_chunks), loader_workers)
        )
        with ModelThreads.for_models(model_threads, detectors) as threads:
            for batch, batch_chunks in zip(plan.pending, chunks, strict=True):
                # The failure policy of every executor: a batch that raises is tried again (decoded afresh, in
                # this process) up to max_retries times, then committed as an errors row; the others go on.
                ahead = (next(decoded) for _ in batch_chunks)
                for attempt in range(1, max_retries + 2):
                    try:
                        rows, failed, seen = BatchRows(models, score_floor), [], 0
                        # the models run on a chunk while this thread decodes and starts the next
                        running = ((start_chunk(c, rows, failed, threads), len(c)) for c in ahead)
                        for wait_and_add, images in one_ahead(running):
                            wait_and_add()
                            seen += images
                            if attempt == 1:
                                run.within_batch(seen)
                        detections = rows.table(plan.items, batch.key)
                        errors = error_frame(failed, plan.items, brand)
                        commit_batch(plan.out_dir, plan.errors_dir, batch.key, detections, errors)
                        run.batch_committed(batch.images, len(detections), len(errors))
                        break
                    except Exception as err:
                        threads.drain()
                        if attempt == 1:  # the loader decoded this batch ahead: skip what is left of it
                            for _ in ahead:
                                pass
                        reason = reason_of(err)
                        if attempt <= max_retries:
                            run.say(
                                f"detections {brand}: batch {run.finished + 1} attempt {attempt} failed ({reason}); "
                                "retrying"
                            )
                            ahead = ([dataset[i] for i in positions] for positions in batch_chunks)
                            continue
                        commit_failed_batch(root, brand, plan.out_dir, plan.errors_dir, batch, reason)
                        run.batch_failed(batch.images, attempt, reason)
    return run.finish(started)


def one_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items` in order, each one given out only after the next has been taken."""
    previous: list[T] = []
    for item in items:
        yield from previous
        previous = [item]
    yield from previous
