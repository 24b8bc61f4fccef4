"""Running a run's models on one chunk of images: one after another, or side by side on CPU threads.

A small detector does not keep two CPU cores busy: its convolutions are small and much of its time is NMS,
RoIAlign and Python between them, so a second torch thread adds little (the demo's `tiny` model: 19 images/s
with one thread, 21–27 with two). Two models running at once, each on one thread, use both cores: on 2 cores
the demo profile's detections ran 1.6× faster than one model at a time, and 2.1× the case study's per-image
loop (`benchmarks/bench_detect.py`). torch releases the GIL inside its operators, so threads suffice and the
models are shared, not copied.

On a GPU the models run one after another: they share one device, and side by side they would only queue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import TracebackType

import numpy as np

from creative_assets.detection.backend import Detector, Predictions


def usable_cpus() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Above this many parameters a detector's convolutions keep the CPU's cores busy by themselves; side by side or
# several images per call it only ran slower (X101-FPN at 800 px on 2 cores: 0.119 images/s one image per call
# with two torch threads, 0.103 side by side, 0.086 with four images per call). Below it (tiny 0.9 M
# parameters, MobileNetV3-FPN 19 M) side by side gained 1.4–1.8×.
LARGE_MODEL_PARAMETERS = 30_000_000


def parameter_count(detector: Detector) -> int:
    """The detector's parameters when it says (`parameter_count`), else 0 (a small model)."""
    return int(getattr(detector, "parameter_count", 0))


def model_threads(requested: int | None, detectors: Sequence[Detector]) -> int:
    """Threads to run `detectors` on: 1 when any runs on a GPU, else `requested`, else every usable core for
    small models and 1 for large ones."""
    if any(d.device != "cpu" for d in detectors):
        return 1
    if requested is not None:
        return max(1, requested)
    return 1 if large_on_cpu(detectors) else usable_cpus()


def large_on_cpu(detectors: Sequence[Detector]) -> bool:
    """True when a detector runs on the CPU and is large: it is then given one image per call."""
    return any(d.device == "cpu" and parameter_count(d) > LARGE_MODEL_PARAMETERS for d in detectors)


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def split(count: int, parts: int) -> list[range]:
    """`range(count)` cut into `parts` consecutive, nearly equal, non-empty pieces (fewer when count is small)."""
    parts = max(1, min(parts, count))
    bounds = np.linspace(0, count, parts + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


class ModelThreads:
    """Runs every model on a chunk of images, on `threads` threads of one torch thread each (1: in the calling
    thread, with the detectors' own thread settings). Results are in model order and image order whatever the
    threads, so the rows of a batch do not depend on them.

    With fewer models than threads (one object's model on 2 cores), each model gets the chunk in pieces, one
    per thread. With as many or more (5 models on 2 threads) each call takes the whole chunk: two images per call
    ran faster than one, and the next chunk's calls, started while this one's finish, keep both threads busy.
    A model may run on two pieces or chunks at once; the backends' inference keeps no state between calls, so
    that is safe."""

    def __init__(self, threads: int = 1, images_per_call: int | None = None) -> None:
        if threads < 1:
            raise ValueError(f"model threads must be ≥ 1, got {threads}")
        self.threads = threads
        self.images_per_call = images_per_call  # None: the whole chunk (or its piece) in one call
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="detect", initializer=_one_torch_thread)
            if threads > 1
            else None
        )
        self._running: list[Future] = []

    @classmethod
    def for_models(cls, requested: int | None, detectors: Sequence[Detector]) -> ModelThreads:
        """Threads for `detectors` (`model_threads`), one image per call for large models on the CPU."""
        return cls(model_threads(requested, detectors), 1 if large_on_cpu(detectors) else None)

    def predict(
        self, detectors: Sequence[Detector], images: Sequence[np.ndarray], score_floor: float
    ) -> list[list[Predictions]]:
        """One list of predictions per detector, one Predictions per image."""
        return self.submit(detectors, images, score_floor)()

    def submit(
        self, detectors: Sequence[Detector], images: Sequence[np.ndarray], score_floor: float
    ) -> Callable[[], list[list[Predictions]]]:
        """Start `predict` and return what waits for its result (on one thread: compute it now), so the caller
        can decode the next chunk while the models run."""
        if not images:
            return lambda: [[] for _ in detectors]
        # fewer models than threads: each model gets the chunk in pieces, one per thread; otherwise whole chunks
        # (the next chunk's calls queue behind this one's, so no thread waits for the last model)
        pieces = split(len(images), 1 if len(detectors) >= self.threads else self.threads)
        if self.images_per_call:
            pieces = [
                range(i, min(i + self.images_per_call, p.stop))
                for p in pieces
                for i in p[:: self.images_per_call]
            ]
        if self._pool is None:
            results = [
                [
                    pred
                    for p in pieces
                    for pred in d.predict(images[p.start : p.stop], score_floor=score_floor)
                ]
                for d in detectors
            ]
            return lambda: results
        futures = [
            [self._pool.submit(d.predict, images[p.start : p.stop], score_floor) for p in pieces]
            for d in detectors
        ]
        flat = [f for per_model in futures for f in per_model]
        self._running.extend(flat)

        def result() -> list[list[Predictions]]:
            _, pending = wait(flat, return_when=FIRST_EXCEPTION)
            if pending:  # one failed: cancel what has not started, let the rest finish, then raise
                for f in pending:
                    f.cancel()
                wait(pending)
            for f in flat:
                if not f.cancelled() and f.exception() is not None:
                    raise f.exception()  # type: ignore[misc]
            self._running = [f for f in self._running if not f.done()]
            return [[p for f in per_model for p in f.result()] for per_model in futures]

        return result

    def drain(self) -> None:
        """Wait for every model call started and not yet collected (after a failure, before a retry)."""
        wait(self._running)
        self._running = []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ModelThreads:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
