"""The exhaustive grid on Ray: each training run of `detection.grid` is one Ray Tune trial.

The trials, their files and their table are those of `run_grid`: the same unit of work
(`grid_executors.train_run`), the same table assembly and the same failure policy. The same training runs (one per
BATCH_SIZE_PER_IMAGE with snapshots at the smaller MAX_ITERs when prefix sharing applies, else one per
MAX_ITER × BATCH_SIZE_PER_IMAGE), the same backend training and `evaluate_detector`, the same atomic
`trials/<key>/model.pth` and `trials/<key>/result.json` with the same fingerprints. Local and Ray runs
therefore resume each other: a trial finished on disk is skipped, whichever executor made it.

The Tune trials run `tune.grid_search` over the runs still to do, each with one GPU (or `gpus_per_trial` of
one) when the cluster has GPUs, else one CPU (and `train.cpu_threads` torch threads, default one). Workers
write the trial files straight into `out_dir`, so on a cluster of several machines the data root must be on
storage every node mounts at the same path (NFS, a mounted bucket); Tune's own bookkeeping goes to
`out_dir/ray_tune` and is removed at the end. A failing run is retried `max_failures` times (a retry trains
only the trials still missing); a run that still fails becomes one error row per missing trial of it in
`GridResult.errors`, and those trials are absent from the table.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from creative_assets.detection.backend import CocoSplit, TrialParams
from creative_assets.detection.failure_policy import (
    DEFAULT_MAX_RETRIES,
    GRID_ERROR_COLUMNS,
    check_retries,
    reason_of,
)
from creative_assets.detection.grid import GridResult, LogFn
from creative_assets.detection.grid_executors import (
    GridJob,
    assemble_grid,
    error_rows,
    plan_grid,
    run_label,
    train_run,
)
from creative_assets.detection.registry import backend_by_name
from creative_assets.execution.ray_cluster import cluster_gpus, connect, import_ray
from creative_assets.settings import Settings

__all__ = ["GRID_ERROR_COLUMNS", "TUNE_FOLDER", "run_grid_ray"]

TUNE_FOLDER = "ray_tune"


@dataclass(frozen=True)
class _TuneJob:
    """What every Tune trial needs besides its run: shipped once through the object store."""

    backend_name: str
    grid: GridJob
    runs: dict[str, list[tuple[int, int]]]  # run label → its trials as (MAX_ITER, BATCH_SIZE_PER_IMAGE)
    threads: int | None  # torch threads on the CPU


def _train_run(config: dict[str, Any], job: _TuneJob) -> None:
    """Body of one Tune trial: the grid's unit of work (`grid_executors.train_run`) for its run."""
    import torch
    from ray import tune

    if job.threads:
        torch.set_num_threads(job.threads)
    planned = [TrialParams(m, b) for m, b in job.runs[config["run"]]]
    backend = backend_by_name(job.backend_name, job.grid.settings.train)
    trained = train_run(backend, job.grid, planned)
    tune.report({"trials": len(planned), "trained": len(trained)})


def _trial_resources(gpus_per_trial: float) -> dict[str, float]:
    if cluster_gpus() > 0:
        return {"cpu": 1, "gpu": gpus_per_trial}
    return {"cpu": 1}


def run_grid_ray(
    backend_name: str,
    train: CocoSplit,
    valid: CocoSplit,
    classes: list[str],
    settings: Settings,
    out_dir: Path,
    log: LogFn | None = None,
    address: str | None = None,
    *,
    gpus_per_trial: float = 1.0,
    max_failures: int = DEFAULT_MAX_RETRIES,
) -> GridResult:
    """Train and evaluate every trial of `settings.grid` not finished in `out_dir` as Ray Tune trials.

    `backend_name` is `torchvision` or `detectron2` (`registry.resolve_backend_name`); `address` (else
    `RAY_ADDRESS`) names the cluster, else a local Ray with `grid.parallel_runs` CPUs is started. The data
    root must be on storage every Ray node sees (see the module docstring).
    """
    if not 0 < gpus_per_trial <= 1:
        raise ValueError(f"gpus_per_trial must be in (0, 1], got {gpus_per_trial}")
    check_retries(max_failures)
    say = log or (lambda _msg: None)
    # Workers change directory into Tune's trial folders: every path they get must be absolute.
    out_dir = Path(out_dir).resolve()
    settings = settings.model_copy(update={"data_root": Path(settings.data_root).resolve()})
    train = CocoSplit(Path(train.json_path).resolve(), Path(train.image_root).resolve())
    valid = CocoSplit(Path(valid.json_path).resolve(), Path(valid.image_root).resolve())

    prefix_stable = backend_by_name(backend_name, settings.train).prefix_stable
    plan, grid, groups = plan_grid(train, valid, classes, settings, out_dir, prefix_stable, say)
    errors: list[dict[str, str]] = []
    if groups:
        job = _TuneJob(
            backend_name=backend_name,
            grid=grid,
            runs={run_label(g): [(p.max_iter, p.batch_size_per_image) for p in g] for g in groups},
            threads=settings.train.cpu_threads or 1,
        )
        errors = _tune(job, say, address, gpus_per_trial, max_failures)
    return assemble_grid(grid, plan.params, errors)


def _tune(
    job: _TuneJob, say: LogFn, address: str | None, gpus_per_trial: float, max_failures: int
) -> list[dict[str, str]]:
    """Run `job.runs` as one Tune grid search; error rows for the runs that failed after their retries."""
    import_ray()
    from ray import tune

    connect(address, num_cpus=job.grid.settings.grid.parallel_runs)
    resources = _trial_resources(gpus_per_trial)
    if "gpu" in resources:
        job = replace(job, threads=None)
    runs = job.runs
    say(f"{len(runs)} training runs as Ray Tune trials, each with {resources}")
    storage = job.grid.out_dir / TUNE_FOLDER
    shutil.rmtree(storage, ignore_errors=True)  # left by a killed driver; resuming goes by the trial files
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_train_run, job=job), resources),
        param_space={"run": tune.grid_search(list(runs))},
        tune_config=tune.TuneConfig(
            trial_name_creator=lambda trial: str(trial.config["run"]),
            trial_dirname_creator=lambda trial: str(trial.config["run"]),
        ),
        run_config=tune.RunConfig(
            name="grid",
            storage_path=str(storage),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )
    outcome = tuner.fit()
    errors: list[dict[str, str]] = []
    for result in outcome:
        name = str(result.config["run"])
        if result.error is not None:
            reason = reason_of(result.error)
            say(f"run {name}: failed after {max_failures + 1} attempts: {reason}")
            errors.extend(error_rows(job.grid, [TrialParams(m, b) for m, b in runs[name]], reason))
    shutil.rmtree(storage, ignore_errors=True)
    return errors
