"""The grid's executors: one plan, one unit of work, one failure policy; sequential and process-pool here,
Ray in `execution/ray_grid.py`.

The plan (`grid.plan_trials` + `grid.training_groups`) says which trials are finished and which training
runs are still to do. The unit of work, `train_run`, is a plain function of plain data (a backend — a small
picklable object holding only its device and thread settings — a `GridJob` and the run's trials): it trains
the run's trials still missing as one run with snapshots, evaluates and saves each one, and removes the run's
scratch folder. The executors only map it over the runs: in this process one after another, in spawned
worker processes (`grid.parallel_runs` > 1 on a CPU, one torch thread each), or as Ray Tune trials.

Failure policy (`failure_policy.py`): a run that raises, or whose worker process dies, is tried again up to
`max_retries` times (a retry trains only the trials still missing); after that its missing trials become
error rows (`GridResult.errors`) and the other runs go on. `assemble_grid` builds the table from the files
on disk, the same way for every executor, so their tables are equal.
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creative_assets.atomic import remove_stale_temporaries
from creative_assets.detection.backend import CocoSplit, DetectorBackend, TrialParams
from creative_assets.detection.evaluation import load_ground_truth
from creative_assets.detection.failure_policy import (
    DEFAULT_MAX_RETRIES,
    check_retries,
    grid_error_frame,
    reason_of,
)
from creative_assets.detection.grid import (
    LONG_COLUMNS,
    GridProgressFn,
    GridResult,
    LogFn,
    TrainingRun,
    TrialPlan,
    finish_trial,
    finished_trial,
    plan_trials,
    training_groups,
    trial_columns,
    trials_frame,
)
from creative_assets.detection.runtime import resolve_device
from creative_assets.settings import Settings

# progress of one unit: (iterations done in this attempt, info)
UnitProgressFn = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class GridJob:
    """What every unit of the grid needs besides its run's trials (plain data; shipped to workers once)."""

    train: CocoSplit
    valid: CocoSplit
    classes: list[str]
    settings: Settings
    out_dir: Path
    fingerprints: dict[str, str]

    @property
    def trials_dir(self) -> Path:
        return self.out_dir / "trials"


def run_label(trials: list[TrialParams]) -> str:
    """How logs and error rows name a run: `roi<b>_it<n>` when shared, the trial key when alone."""
    return TrainingRun(trials=list(trials), runs_dir=Path()).run_dir.name


def train_run(
    backend: DetectorBackend,
    job: GridJob,
    planned: list[TrialParams],
    progress: UnitProgressFn | None = None,
    log: LogFn | None = None,
) -> list[str]:
    """The unit of work: train `planned`'s trials still missing as one run, evaluate and save each.

    Returns the keys of the trials it trained (none when all were finished already, e.g. by an earlier
    attempt that failed after saving some snapshots).
    """
    say = log or (lambda _msg: None)
    for p in planned:
        remove_stale_temporaries(job.trials_dir / p.key)
    missing = [p for p in planned if finished_trial(job.trials_dir, p, job.fingerprints[p.key]) is None]
    if not missing:
        return []
    gt = load_ground_truth(job.valid.json_path)
    run = TrainingRun(trials=missing, runs_dir=job.out_dir / "runs")
    run.result = backend.train(
        job.train,
        job.classes,
        run.top,
        job.settings.train,
        run.run_dir,
        snapshot_iters=run.snapshots,
        progress=(lambda done, _total, info: progress(done, info)) if progress is not None else None,
    )
    for p in missing:
        row = finish_trial(
            backend, run, p, job.valid, gt, job.classes, job.settings, job.trials_dir, job.fingerprints
        )["row"]
        say(
            f"trial {p.key}: mean accuracy {row['mean_accuracy']:.3f}, AP {row['AP']:.3f}, "
            f"{row['train_seconds']:.1f} s"
        )
    shutil.rmtree(run.run_dir, ignore_errors=True)
    return [p.key for p in missing]


def error_rows(job: GridJob, planned: list[TrialParams], reason: str) -> list[dict[str, str]]:
    """One error row per trial of a failed run that has no result."""
    label = run_label(planned)
    return [
        {"trial": p.key, "run": label, "error": reason}
        for p in planned
        if finished_trial(job.trials_dir, p, job.fingerprints[p.key]) is None
    ]


def assemble_grid(job: GridJob, params: list[TrialParams], errors: list[dict[str, str]]) -> GridResult:
    """The grid table from the trials on disk, in grid order, and the error rows of trials without a result."""
    results: dict[str, dict[str, Any]] = {}
    failed = {row["trial"] for row in errors}
    rows = list(errors)
    for p in params:
        found = finished_trial(job.trials_dir, p, job.fingerprints[p.key])
        if found is not None:
            results[p.key] = found
        elif p.key not in failed:
            rows.append({"trial": p.key, "run": "", "error": "no result was saved for this trial"})
    # a failed run may have saved some of its snapshots before failing: those trials are results, not errors
    position = {p.key: i for i, p in enumerate(params)}
    rows = sorted((r for r in rows if r["trial"] not in results), key=lambda r: position[r["trial"]])
    ordered = [results[p.key] for p in params if p.key in results]
    return GridResult(
        trials=trials_frame([r["row"] for r in ordered], trial_columns(job.settings.confidences)),
        long=trials_frame([x for r in ordered for x in r["long"]], LONG_COLUMNS),
        errors=grid_error_frame(rows),
    )


def run_sequentially(
    backend: DetectorBackend,
    job: GridJob,
    runs: list[list[TrialParams]],
    max_retries: int,
    progress: Callable[[int, int, dict[str, float]], None],
    say: LogFn,
) -> list[dict[str, str]]:
    """Map `train_run` over `runs` in this process; error rows of the runs that failed every attempt.

    `progress(index, done, info)` reports run `index`'s iterations in its current attempt, as
    `run_in_processes` does.
    """
    errors: list[dict[str, str]] = []
    for index, planned in enumerate(runs):
        for attempt in range(1, max_retries + 2):
            try:
                train_run(backend, job, planned, lambda done, info, i=index: progress(i, done, info), say)
                break
            except Exception as err:  # the policy: retry, then an error row; the other runs go on
                reason = reason_of(err)
                if attempt <= max_retries:
                    say(f"run {run_label(planned)}: attempt {attempt} failed ({reason}); retrying")
                    continue
                say(f"run {run_label(planned)}: failed after {attempt} attempts: {reason}")
                errors.extend(error_rows(job, planned, reason))
    return errors


def _worker(
    backend: DetectorBackend, job: GridJob, planned: list[TrialParams], index: int, messages: Any
) -> None:
    """Body of a worker process: one `train_run` on one torch thread, reporting progress and the outcome."""
    import torch

    torch.set_num_threads(1)
    try:
        train_run(
            backend,
            job,
            planned,
            progress=lambda done, info: messages.put(("progress", index, (done, info))),
            log=lambda line: messages.put(("log", index, line)),
        )
        messages.put(("done", index, None))
    except BaseException as err:
        messages.put(("error", index, f"{reason_of(err)}\n{traceback.format_exc()}"))


def run_in_processes(
    backend: DetectorBackend,
    job: GridJob,
    runs: list[list[TrialParams]],
    workers: int,
    max_retries: int,
    progress: Callable[[int, int, dict[str, float]], None],
    say: LogFn,
) -> list[dict[str, str]]:
    """Map `train_run` over `runs` in up to `workers` spawned processes; error rows as `run_sequentially`.

    `progress(index, done, info)` reports run `index`'s iterations in its current attempt.
    """
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    pending = list(range(len(runs)))
    attempts = dict.fromkeys(pending, 0)
    active: dict[int, multiprocessing.process.BaseProcess] = {}
    errors: list[dict[str, str]] = []

    def failed(i: int, reason: str) -> None:
        if attempts[i] <= max_retries:
            say(f"run {run_label(runs[i])}: attempt {attempts[i]} failed ({reason}); retrying")
            pending.append(i)
        else:
            say(f"run {run_label(runs[i])}: failed after {attempts[i]} attempts: {reason}")
            errors.extend(error_rows(job, runs[i], reason))

    try:
        while pending or active:
            while pending and len(active) < workers:
                i = pending.pop(0)
                attempts[i] += 1
                process = ctx.Process(target=_worker, args=(backend, job, runs[i], i, messages), daemon=True)
                process.start()
                active[i] = process
            try:
                kind, i, payload = messages.get(timeout=1.0)
            except queue.Empty:
                for i, p in list(active.items()):
                    if not p.is_alive() and p.exitcode not in (0, None):
                        active.pop(i).join()
                        failed(i, f"its worker process died (exit code {p.exitcode}); out of memory?")
                continue
            if kind == "progress":
                progress(i, *payload)
            elif kind == "log":
                say(payload)
            else:
                active.pop(i).join()
                if kind == "error":
                    failed(i, payload.splitlines()[0])
    finally:
        for p in active.values():
            p.kill()
            p.join()
    return errors


def plan_grid(
    train: CocoSplit,
    valid: CocoSplit,
    classes: Sequence[str],
    settings: Settings,
    out_dir: Path,
    prefix_stable: bool,
    say: LogFn,
) -> tuple[TrialPlan, GridJob, list[list[TrialParams]]]:
    """What every grid executor does first: plan the trials not finished in `out_dir`, the job the units of
    work share, and the training runs (one per ROI batch size when snapshots are prefix-stable and
    `train.share_grid_prefix` is on); each run is logged once."""
    plan = plan_trials(settings, train, valid, classes, out_dir / "trials", say)
    job = GridJob(train, valid, list(classes), settings, out_dir, plan.fingerprints)
    runs = training_groups(plan.todo, settings.train.share_grid_prefix and prefix_stable)
    for planned in runs:
        if len(planned) > 1:
            snapshots = [p.max_iter for p in planned[:-1]]
            say(
                f"run {run_label(planned)}: training to {planned[-1].max_iter} iterations, snapshots at {snapshots}"
            )
        else:
            say(f"trial {planned[0].key}: training")
    return plan, job, runs


def run_grid(
    backend: DetectorBackend,
    train: CocoSplit,
    valid: CocoSplit,
    classes: list[str],
    settings: Settings,
    out_dir: Path,
    progress: GridProgressFn | None = None,
    log: LogFn | None = None,
    parallel_runs: int | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> GridResult:
    """Train and evaluate every trial of `settings.grid` not finished in `out_dir` yet; return all trials.

    `progress(done, total, info)` counts training iterations over the runs still to do; `log` gets a line
    per skipped, trained, evaluated and failed trial. `parallel_runs` overrides `grid.parallel_runs`.
    Trials whose run failed after `max_retries` retries are in `GridResult.errors`, not in the table.
    """
    check_retries(max_retries)
    say = log or (lambda _msg: None)
    out_dir = Path(out_dir)
    plan, job, runs = plan_grid(train, valid, classes, settings, out_dir, backend.prefix_stable, say)
    total = sum(r[-1].max_iter for r in runs)
    done = [0] * len(runs)

    def report(index: int, iterations: int, info: dict[str, float]) -> None:
        done[index] = iterations
        if progress is not None:
            progress(sum(done), total, info)

    workers = parallel_runs if parallel_runs is not None else settings.grid.parallel_runs
    if workers > 1 and multiprocessing.current_process().daemon:
        say("this is a daemonic process, which cannot start workers: training runs one after another")
        workers = 1
    if workers > 1 and len(runs) > 1 and resolve_device(settings.train.device) == "cpu":
        say(f"{len(runs)} training runs, {min(workers, len(runs))} at a time in worker processes")
        errors = run_in_processes(backend, job, runs, workers, max_retries, report, say)
    else:
        errors = run_sequentially(backend, job, runs, max_retries, report, say)
    return assemble_grid(job, plan.params, errors)
