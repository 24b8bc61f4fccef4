"""The exhaustive grid on Ray: each training run of `detection.grid` is one Ray Tune trial.

The trials, their files and their table are those of `run_grid`: the same training runs (one per
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
`RayGridResult.errors`, and those trials are absent from the table.
"""

from __future__ import annotations

import shutil
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from creative_assets.atomic import remove_stale_temporaries
from creative_assets.detection.backend import CocoSplit, DetectorBackend, TrialParams
from creative_assets.detection.evaluation import load_ground_truth

# grid.py keeps these helpers private; they are imported, not copied, so both executors stay one definition.
from creative_assets.detection.grid import (
    LONG_COLUMNS,
    GridResult,
    LogFn,
    TrainingRun,
    finish_trial,
    finished_trial,
    plan_trials,
    training_groups,
    trial_columns,
    trials_frame,
)
from creative_assets.detection.registry import backend_by_name
from creative_assets.execution.ray_cluster import cluster_gpus, connect, import_ray
from creative_assets.settings import Settings

GRID_ERROR_COLUMNS = ["trial", "run", "error"]
TUNE_FOLDER = "ray_tune"
DEFAULT_MAX_FAILURES = 2


@dataclass
class RayGridResult(GridResult):
    """A GridResult of every finished trial, plus `errors`: one row per trial whose run failed after its
    retries (`GRID_ERROR_COLUMNS`: trial, run, error; all strings)."""

    errors: pd.DataFrame = field(default_factory=lambda: _error_frame([]))


@dataclass(frozen=True)
class _GridJob:
    """What every Tune trial needs besides its run: shipped once through the object store."""

    backend_name: str
    train: CocoSplit
    valid: CocoSplit
    classes: list[str]
    settings: Settings
    out_dir: Path
    fingerprints: dict[str, str]
    runs: dict[str, list[tuple[int, int]]]  # run name → its trials as (MAX_ITER, BATCH_SIZE_PER_IMAGE)
    threads: int | None  # torch threads on the CPU


def _error_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=GRID_ERROR_COLUMNS).astype(dict.fromkeys(GRID_ERROR_COLUMNS, "string"))


def _backend(backend_name: str, settings: Settings) -> DetectorBackend:
    return backend_by_name(backend_name, settings.train)


def _run_name(trials: Sequence[TrialParams]) -> str:
    """The run's folder name in grid.py: `roi<b>_it<n>` when shared, the trial key when alone."""
    return TrainingRun(trials=list(trials), runs_dir=Path()).run_dir.name


def _train_run(config: dict[str, Any], job: _GridJob) -> None:
    """Body of one Tune trial: train the run's trials still missing, evaluate and save each (as run_grid)."""
    import torch
    from ray import tune

    if job.threads:
        torch.set_num_threads(job.threads)
    trials_dir = job.out_dir / "trials"
    planned = [TrialParams(m, b) for m, b in job.runs[config["run"]]]
    for p in planned:
        remove_stale_temporaries(trials_dir / p.key)
    # after a failed attempt some snapshots may be saved already: train only what is missing, as a rerun would
    missing = [p for p in planned if finished_trial(trials_dir, p, job.fingerprints[p.key]) is None]
    if missing:
        backend = _backend(job.backend_name, job.settings)
        gt = load_ground_truth(job.valid.json_path)
        run = TrainingRun(trials=missing, runs_dir=job.out_dir / "runs")
        run.result = backend.train(
            job.train, job.classes, run.top, job.settings.train, run.run_dir, snapshot_iters=run.snapshots
        )
        for p in missing:
            finish_trial(
                backend, run, p, job.valid, gt, job.classes, job.settings, trials_dir, job.fingerprints
            )
        shutil.rmtree(run.run_dir, ignore_errors=True)
    tune.report({"trials": len(planned), "trained": len(missing)})


def _trial_resources(gpus_per_trial: float) -> dict[str, float]:
    if cluster_gpus() > 0:
        return {"cpu": 1, "gpu": gpus_per_trial}
    return {"cpu": 1}


def _reason(error: BaseException | None) -> str:
    """The last line of the error's text: the exception that ended the run, without Ray's wrapping."""
    if error is None:
        return "the trial ended without saving its result"
    text = str(error).strip() or "".join(traceback.format_exception_only(type(error), error)).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


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
    max_failures: int = DEFAULT_MAX_FAILURES,
) -> RayGridResult:
    """Train and evaluate every trial of `settings.grid` not finished in `out_dir` as Ray Tune trials.

    `backend_name` is `torchvision` or `detectron2` (`registry.resolve_backend_name`); `address` (else
    `RAY_ADDRESS`) names the cluster, else a local Ray with `grid.parallel_runs` CPUs is started. The data
    root must be on storage every Ray node sees (see the module docstring).
    """
    if not 0 < gpus_per_trial <= 1:
        raise ValueError(f"gpus_per_trial must be in (0, 1], got {gpus_per_trial}")
    if max_failures < 0:
        raise ValueError(f"max_failures must be >= 0, got {max_failures}")
    say = log or (lambda _msg: None)
    # Workers change directory into Tune's trial folders: every path they get must be absolute.
    out_dir = Path(out_dir).resolve()
    settings = settings.model_copy(update={"data_root": Path(settings.data_root).resolve()})
    train = CocoSplit(Path(train.json_path).resolve(), Path(train.image_root).resolve())
    valid = CocoSplit(Path(valid.json_path).resolve(), Path(valid.image_root).resolve())
    trials_dir = out_dir / "trials"

    plan = plan_trials(settings, train, valid, classes, trials_dir, say)
    all_params, fingerprints, todo = plan.params, plan.fingerprints, plan.todo

    backend = _backend(backend_name, settings)
    share = settings.train.share_grid_prefix and backend.prefix_stable
    groups = training_groups(todo, share)
    runs = {_run_name(g): [(p.max_iter, p.batch_size_per_image) for p in g] for g in groups}
    errors: list[dict[str, str]] = []
    if runs:
        job = _GridJob(
            backend_name=backend_name,
            train=train,
            valid=valid,
            classes=list(classes),
            settings=settings,
            out_dir=out_dir,
            fingerprints=fingerprints,
            runs=runs,
            threads=settings.train.cpu_threads or 1,
        )
        errors = _tune(job, say, address, gpus_per_trial, max_failures)

    results: dict[str, dict[str, Any]] = {}
    failed = {row["trial"] for row in errors}
    for p in all_params:
        found = finished_trial(trials_dir, p, fingerprints[p.key])
        if found is not None:
            results[p.key] = found
        elif p.key not in failed:
            errors.append({"trial": p.key, "run": "", "error": "no result was saved for this trial"})
    # a failed run may have saved some of its snapshots before failing: those trials are results, not errors
    errors = [row for row in errors if row["trial"] not in results]
    ordered = [results[p.key] for p in all_params if p.key in results]
    position = {p.key: i for i, p in enumerate(all_params)}
    return RayGridResult(
        trials=trials_frame([r["row"] for r in ordered], trial_columns(settings.confidences)),
        long=trials_frame([x for r in ordered for x in r["long"]], LONG_COLUMNS),
        errors=_error_frame(sorted(errors, key=lambda row: position[row["trial"]])),
    )


def _tune(
    job: _GridJob, say: LogFn, address: str | None, gpus_per_trial: float, max_failures: int
) -> list[dict[str, str]]:
    """Run `job.runs` as one Tune grid search; error rows for the runs that failed after their retries."""
    import_ray()
    from ray import tune

    connect(address, num_cpus=job.settings.grid.parallel_runs)
    resources = _trial_resources(gpus_per_trial)
    if "gpu" in resources:
        job = replace(job, threads=None)
    runs = job.runs
    say(f"{len(runs)} training runs as Ray Tune trials, each with {resources}")
    for name, trials in runs.items():
        if len(trials) > 1:
            snapshots = [m for m, _ in trials[:-1]]
            say(f"run {name}: training to {trials[-1][0]} iterations, snapshots at {snapshots}")
        else:
            say(f"trial {name}: training")
    storage = job.out_dir / TUNE_FOLDER
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
            reason = _reason(result.error)
            say(f"run {name}: failed (retries: {max_failures}): {reason}")
            errors.extend(
                {"trial": TrialParams(m, b).key, "run": name, "error": reason} for m, b in runs[name]
            )
    shutil.rmtree(storage, ignore_errors=True)
    for trials in runs.values():
        for p in (TrialParams(m, b) for m, b in trials):
            found = finished_trial(job.out_dir / "trials", p, job.fingerprints[p.key])
            if found is not None:
                row = found["row"]
                say(
                    f"trial {row['trial']}: mean accuracy {row['mean_accuracy']:.3f}, AP {row['AP']:.3f}, "
                    f"{row['train_seconds']:.1f} s"
                )
    return errors
