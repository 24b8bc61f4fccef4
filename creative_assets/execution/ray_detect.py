"""Detection on Ray: the batches of `detection.batch_detect` as a Ray Data pipeline over model-holding actors.

Same batches, same parts, same table as `run_detection`: the work items are cut by `plan_batches` with the
same `model_fingerprint`, so every batch has the same key and a part committed by either executor is reused
by the other. Batches whose part exists are skipped; the others become rows of a Ray Data dataset
(`{key, start, stop}`) mapped by `DetectionWorker` actors, one per GPU (or per CPU without GPUs, or
`num_actors`). Each actor loads ALL of the brand's models once, then for each batch decodes its images (once
for every model, the next chunk on a thread while the models run), runs the models `images_per_forward`
images at a time, builds the rows with the shared row builder (`batch_rows`) and commits the part atomically
itself (errors part first, detections part last, as `run_detection` does); only small statistics travel
back to the driver. Stale parts are then removed, and the run logged, by the same `batch_runs` code as `run_detection`.

Models travel as `ModelSpec`s (object, model_id, backend name, checkpoint path, thresholds; optionally the
class names), not as live detectors. Without class names the driver loads each checkpoint once on the CPU
to learn them, since batch keys depend on them; passing them (chosen_model's `classes`) avoids that.

Failures: an exception while processing a batch is retried in the actor `max_retries` times; a crashed actor
is restarted (`max_restarts`) and its batch resubmitted (`max_task_retries`), both bounded by `max_retries`.
A batch that still fails is an errors-table row (stage `detections`, record = batch key) committed as the
batch's errors part, with no detections part, so the next run tries it again; the other batches are kept.

Workers read images and write parts under the data root themselves: on a cluster of several machines the
data root must be on storage every node mounts at the same path (NFS, a mounted bucket).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# The plan, rows, parts and run log of every executor: imported, not copied, so both executors build the
# same rows, commit the same parts and log the same way.
from creative_assets.detection.batch_parts import commit_batch, commit_failed_batch, error_frame
from creative_assets.detection.batch_rows import BatchRows, LoadedModel, detect_chunk
from creative_assets.detection.batch_runs import DetectionRun, check_run_arguments, open_run
from creative_assets.detection.batches import Batch, ModelDescriptor
from creative_assets.detection.failure_policy import DEFAULT_MAX_RETRIES
from creative_assets.detection.image_loader import DecodedImage, decode_image
from creative_assets.detection.registry import backend_by_name
from creative_assets.detection.tiling import TiledDetector, inference_of
from creative_assets.execution.ray_cluster import cluster_cpus, cluster_gpus, connect, import_ray
from creative_assets.layout import DataRoot
from creative_assets.media.decode import DEFAULT_MAX_MEGAPIXELS
from creative_assets.settings import TilingSettings, TrainSettings

STAT_COLUMNS = ["key", "images", "detections", "errors", "failed", "reason", "attempts"]


@dataclass(frozen=True)
class ModelSpec:
    """One chosen model as the actors load it: picklable, no live detector. `checkpoint` is relative to the
    data root (or absolute inside it); `classes`, when given, must be the checkpoint's classes in order."""

    object_name: str
    model_id: str
    backend: str
    checkpoint: str
    thresholds: Mapping[str, float]
    classes: tuple[str, ...] | None = None
    tiling: TilingSettings | None = None  # tiled inference when set (the object's enabled `tiling`)
    beats_baseline: bool = True  # chosen_model's test-split verdict


def as_model_spec(spec: ModelSpec | Sequence[Any]) -> ModelSpec:
    """A ModelSpec from itself or from (object_name, model_id, backend, checkpoint, thresholds[, classes])."""
    if isinstance(spec, ModelSpec):
        return spec
    values = list(spec)
    if len(values) not in (5, 6):
        raise ValueError(
            "a model spec is (object_name, model_id, backend, checkpoint, thresholds[, classes]), "
            f"got {len(values)} values"
        )
    object_name, model_id, backend, checkpoint, thresholds, *classes = values
    return ModelSpec(
        object_name=str(object_name),
        model_id=str(model_id),
        backend=str(backend),
        checkpoint=Path(checkpoint).as_posix(),
        thresholds={str(k): float(v) for k, v in dict(thresholds).items()},
        classes=tuple(str(c) for c in classes[0]) if classes and classes[0] is not None else None,
    )


def checkpoint_path(root: DataRoot, checkpoint: str | Path) -> Path:
    """The checkpoint's absolute path; PathEscapeError when it is outside the data root."""
    path = Path(checkpoint)
    return root.resolve_inside(root.relative(path) if path.is_absolute() else path.as_posix())


def load_model(root: DataRoot, spec: ModelSpec, train: TrainSettings | None = None) -> LoadedModel:
    """Load one spec's detector with its backend on `train.device` with `train.cpu_threads` (default: CUDA
    when this process sees a GPU, torch's threads)."""
    backend = backend_by_name(spec.backend, train or TrainSettings())
    detector = backend.load(checkpoint_path(root, spec.checkpoint))
    if detector.backend != spec.backend:
        raise ValueError(
            f"model {spec.object_name}/{spec.model_id}: the checkpoint is a {detector.backend} model, "
            f"the spec says {spec.backend}"
        )
    if spec.classes is not None and list(spec.classes) != list(detector.classes):
        raise ValueError(
            f"model {spec.object_name}/{spec.model_id}: the checkpoint's classes {detector.classes} differ "
            f"from the spec's {list(spec.classes)}"
        )
    if spec.tiling is not None:
        detector = TiledDetector(detector, spec.tiling)
    return LoadedModel(spec.object_name, spec.model_id, detector, dict(spec.thresholds), spec.beats_baseline)


def describe(root: DataRoot, spec: ModelSpec, train: TrainSettings) -> ModelDescriptor:
    """A spec as plain data; its classes come from the checkpoint (loaded on the CPU) when the spec has none."""
    if spec.classes is not None:
        return ModelDescriptor(
            spec.object_name,
            spec.model_id,
            spec.backend,
            spec.classes,
            dict(spec.thresholds),
            inference_of(spec.tiling),
            spec.beats_baseline,
        )
    return load_model(root, spec, train.model_copy(update={"device": "cpu"})).describe()


@dataclass(frozen=True)
class DetectionJob:
    """Everything a DetectionWorker needs, sent once to each actor."""

    root: DataRoot
    brand: str
    specs: tuple[ModelSpec, ...]
    items: Any  # object-store reference to the sorted work items; batches are row ranges of it
    out_dir: Path
    errors_dir: Path
    score_floor: float
    images_per_forward: int
    attempts: int
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
    train: TrainSettings | None = None  # the device and CPU threads the actors load their models with


def _stats(key: str, images: int, detections: int, errors: int, reason: str, attempts: int) -> dict[str, Any]:
    return {
        "key": key,
        "images": images,
        "detections": detections,
        "errors": errors,
        "failed": bool(reason),
        "reason": reason,
        "attempts": attempts,
    }


class DetectionWorker:
    """A Ray Data actor holding every model of the brand; each call commits the parts of its batches."""

    def __init__(self, job: DetectionJob) -> None:
        import torch

        cpus = import_ray().get_runtime_context().get_assigned_resources().get("CPU")
        if cpus:
            torch.set_num_threads(max(1, int(cpus)))
        self.job = job
        self.items: pd.DataFrame = import_ray().get(job.items)
        self.models = [load_model(job.root, spec, job.train) for spec in job.specs]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Detect and commit each batch descriptor of `batch`; one statistics row per descriptor."""
        stats = [
            self._attempt(str(key), int(start), int(stop))
            for key, start, stop in zip(batch["key"], batch["start"], batch["stop"], strict=True)
        ]
        return {column: np.array([s[column] for s in stats]) for column in STAT_COLUMNS}

    def _attempt(self, key: str, start: int, stop: int) -> dict[str, Any]:
        reason = ""
        for attempt in range(1, self.job.attempts + 1):
            try:
                detections, errors = self._detect(key, start, stop)
            except Exception as err:  # a failed batch is reported, the other batches go on
                reason = f"{type(err).__name__}: {err}"
                continue
            return _stats(key, stop - start, detections, errors, "", attempt)
        return _stats(key, stop - start, 0, 0, reason, self.job.attempts)

    def _detect(self, key: str, start: int, stop: int) -> tuple[int, int]:
        job = self.job
        items = self.items.iloc[start:stop].reset_index(drop=True)
        paths = items["path"].tolist()
        step = job.images_per_forward
        chunks = [range(s, min(s + step, len(paths))) for s in range(0, len(paths), step)]

        def decode(chunk: range) -> list[DecodedImage]:
            return [decode_image(job.root, paths[i], i, job.max_megapixels) for i in chunk]

        rows = BatchRows(self.models, job.score_floor)
        failed: list[DecodedImage] = []
        # same chunks as run_detection, so the models see the same forward batches and give the same boxes
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(decode, chunks[0])
            for i in range(len(chunks)):
                decoded = pending.result()
                if i + 1 < len(chunks):
                    pending = pool.submit(decode, chunks[i + 1])
                detect_chunk(decoded, rows, failed)
        detections = rows.table(items, key)
        errors = error_frame(failed, items, job.brand)
        commit_batch(job.out_dir, job.errors_dir, key, detections, errors)
        return len(detections), len(errors)


def _actor_plan(num_actors: int | None, batches: int) -> tuple[int, dict[str, float]]:
    """How many actors and what each one holds: a GPU each when the cluster has GPUs, else a CPU each."""
    gpus = cluster_gpus()
    per_actor: dict[str, float] = {"num_cpus": 1, "num_gpus": 1} if gpus > 0 else {"num_cpus": 1}
    actors = num_actors or max(1, int(gpus if gpus > 0 else cluster_cpus()))
    return max(1, min(actors, batches)), per_actor


@contextmanager
def _data_context() -> Iterator[None]:
    """Ray Data settings for one detection run, restored afterwards."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = (context.max_errored_blocks, context.enable_progress_bars, context.print_on_execution_start)
    # a batch lost with its actor beyond the retries drops out of the results and becomes an error row
    context.max_errored_blocks = -1
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield
    finally:
        context.max_errored_blocks, context.enable_progress_bars, context.print_on_execution_start = saved


def _dataset(
    job: DetectionJob, pending: list[Batch], actors: int, per_actor: dict[str, float], max_retries: int
) -> Any:
    """The pending batches as a Ray Data dataset (one block each) mapped by DetectionWorker actors."""
    ray = import_ray()
    from ray.data import ActorPoolStrategy

    descriptors = [{"key": b.key, "start": b.start, "stop": b.stop} for b in pending]
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for bounded actor retries (Ray Data's default is unbounded), so
        # they go in the deprecated free-form remote arguments.
        warnings.simplefilter("ignore", DeprecationWarning)
        return ray.data.from_items(descriptors, override_num_blocks=len(descriptors)).map_batches(
            DetectionWorker,
            fn_constructor_kwargs={"job": job},
            batch_size=1,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=actors),
            max_restarts=max_retries,
            max_task_retries=max_retries,
            **per_actor,
        )


def run_detection_ray(
    root: DataRoot,
    brand: str,
    items: pd.DataFrame,
    models_spec: Sequence[ModelSpec | Sequence[Any]],
    out_dir: Path,
    *,
    batch_size: int,
    images_per_forward: int,
    score_floor: float,
    log: Callable[[str], None] | None = None,
    address: str | None = None,
    num_actors: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    errors_dir: Path | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    removed: Collection[str] | None = None,
    train_settings: TrainSettings | None = None,
) -> DetectionRun:
    """Run every model on every work item of `brand` on Ray, one committed part per batch (resumable).

    `address` (else `RAY_ADDRESS`) names the cluster, else a local Ray with `num_actors` CPUs is started;
    `num_actors` defaults to the cluster's GPUs (one each), or its CPUs without GPUs.
    """
    started = time.perf_counter()
    check_run_arguments(brand, images_per_forward, max_retries)
    specs = tuple(as_model_spec(s) for s in models_spec)
    for spec in specs:
        # a checkpoint outside the data root fails here, before any actor starts
        checkpoint_path(root, spec.checkpoint)
    train = train_settings or TrainSettings()
    described = [describe(root, s, train) for s in specs]
    run = open_run(
        brand, items, described, out_dir, errors_dir, batch_size, score_floor, removed, log, progress
    )
    plan = run.plan
    if plan.pending:
        connect(address, num_cpus=num_actors)
        job = DetectionJob(
            root=root,
            brand=brand,
            specs=specs,
            items=import_ray().put(plan.items),
            out_dir=plan.out_dir,
            errors_dir=plan.errors_dir,
            score_floor=score_floor,
            images_per_forward=images_per_forward,
            attempts=1 + max_retries,
            max_megapixels=max_megapixels,
            train=train,
        )
        outcome: dict[str, dict[str, Any]] = {}
        actors, per_actor = _actor_plan(num_actors, len(plan.pending))
        run.say(
            f"detections {brand}: {len(plan.pending)} batches on {actors} Ray actor(s), each with {per_actor}"
        )
        with _data_context():
            for stats in _dataset(job, plan.pending, actors, per_actor, max_retries).iter_rows():
                outcome[str(stats["key"])] = stats
                if bool(stats["failed"]):
                    run.batch_failed(int(stats["images"]), int(stats["attempts"]), str(stats["reason"]))
                else:
                    run.batch_committed(int(stats["images"]), int(stats["detections"]), int(stats["errors"]))
        for batch in plan.pending:
            stats = outcome.get(batch.key)
            if stats is None:
                reason = "no result came back from Ray (actor lost)"
                commit_failed_batch(root, brand, plan.out_dir, plan.errors_dir, batch, reason)
                run.batch_failed(batch.images, 1 + max_retries, reason)
            elif bool(stats["failed"]):
                commit_failed_batch(root, brand, plan.out_dir, plan.errors_dir, batch, str(stats["reason"]))
    return run.finish(started)
