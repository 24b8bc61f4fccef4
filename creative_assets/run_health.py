"""Run-worker health for Dagster's run monitoring on one machine: is the process running a run still alive?

Dagster's run-monitoring daemon marks a STARTED run failed when the instance's run launcher reports its worker
gone, but the default launcher cannot tell, so a run whose process was SIGKILLed or OOM-killed (outside
`dagster dev`, where a killed step already fails its run) stayed STARTED forever and kept its place in the
run queue. `LocalRunLauncher` launches exactly like the default one and answers the health check from the
run's own event log: the first engine event of a run carries the pid of the process that runs it ("Started
process for run" for launched runs, "Executing steps in process" for in-process runs such as the CLI's). The
process counts as alive only if that pid exists, is not a zombie, and started no later than the event was
logged (so a recycled pid is not mistaken for the run). This judges processes on the machine the daemon runs
on: the instance config that selects it is written for single-machine deployments (`dagster dev`, the CLI);
a cluster uses its own launcher (k8s, ECS), which has its own health check.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

# /proc's start times have clock-tick precision and boot time one-second precision.
_START_SLACK_S = 2.0


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


def process_alive(pid: int, started_by: float | None = None) -> bool:
    """Whether process `pid` is running (not a zombie) and, if `started_by` is given, started by then."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return False
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X", "x"):
            return False
        boot = _boot_time()
        if started_by is not None and boot is not None:
            started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
            if started > started_by + _START_SLACK_S:
                return False  # the pid was reused by a process that started after the run's
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_process(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, logged at) of the process that runs `run_id`, from its first engine event with a pid."""
    for event in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = event.dagster_event.event_specific_data if event.dagster_event else None
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            try:
                return int(str(getattr(pid, "value", pid))), float(event.timestamp)
            except ValueError:
                continue
    return None


class LocalRunLauncher(DefaultRunLauncher):
    """The default run launcher plus a worker health check for processes on this machine."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """RUNNING while the run's process lives; FAILED once it is gone; RUNNING if it is not known yet."""
        found = run_process(self._instance, run.run_id)
        if found is None:
            # No pid logged yet (the worker is starting): the start timeout covers a worker that never starts.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run process not reported yet")
        pid, logged_at = found
        if process_alive(pid, logged_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"process {pid} is alive")
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the run's process (pid {pid}) is gone: killed (SIGKILL, out of memory) or crashed",
        )
