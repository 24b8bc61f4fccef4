"""Run monitoring with the project's instance config: a SIGKILLed run is marked failed and frees the queue.

A real `dagster-daemon` serves a throwaway code location whose job writes its pid and sleeps. The queue admits
one run at a time. The run that fills it runs in-process in its own Python process, as the CLI's runs do:
no code server is its parent, so only run monitoring (through LocalRunLauncher's health check) can notice
its death. It is killed with SIGKILL; the daemon must mark it failed and then start the run queued behind it.
(A run launched through a code server is already failed by that server when its worker is killed.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

import creative_assets
from creative_assets.instance_config import RUN_MONITORING_POLL_S, ensure_dagster_home
from creative_assets.run_health import process_alive

REPO = Path(creative_assets.__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

SLEEPY = """
import os, time
from pathlib import Path
import dagster as dg

@dg.op(config_schema={"seconds": float, "pid_file": str})
def nap(context):
    Path(context.op_config["pid_file"]).write_text(str(os.getpid()))
    time.sleep(context.op_config["seconds"])

@dg.job(executor_def=dg.in_process_executor)
def nap_job():
    nap()

defs = dg.Definitions(jobs=[nap_job])

if __name__ == "__main__":  # an in-process run, as the CLI makes them: python sleepy.py RUN_ID PID_FILE
    with dg.DagsterInstance.get() as instance:
        nap_job.execute_in_process(
            run_config={"ops": {"nap": {"config": {"seconds": 600.0, "pid_file": os.sys.argv[2]}}}},
            instance=instance,
            run_id=os.sys.argv[1],
        )
"""


def _wait(what: str, predicate, timeout_s: float, step_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"waited {timeout_s:.0f} s for {what}")


def test_dagster_yaml_enables_run_monitoring_with_the_health_checking_launcher(tmp_path: Path) -> None:
    home = ensure_dagster_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["poll_interval_seconds"] == RUN_MONITORING_POLL_S
        assert type(instance.run_launcher).__name__ == "LocalRunLauncher"
        assert instance.run_launcher.supports_check_run_worker_health


def test_an_existing_home_without_monitoring_gets_it_and_keeps_its_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 2\n")
    ensure_dagster_home(home)
    assert yaml.safe_load((home / "dagster.yaml").read_text())["run_queue"] == {"max_concurrent_runs": 2}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled


def test_process_alive_sees_a_live_process_and_not_a_dead_or_later_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid, time.time())
        # a run logged before this process started cannot be this process (a recycled pid)
        assert not process_alive(child.pid, time.time() - 3600)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_a_sigkilled_run_is_marked_failed_and_the_queued_run_then_starts(tmp_path: Path) -> None:
    home = ensure_dagster_home(tmp_path / "home")
    config = home / "dagster.yaml"
    config.write_text(config.read_text().replace("max_concurrent_runs: 4", "max_concurrent_runs: 1"))
    (tmp_path / "sleepy.py").write_text(SLEEPY)
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_file:\n      relative_path: sleepy.py\n      working_directory: {tmp_path}\n"
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
        cwd=tmp_path,
        env=env,
        start_new_session=True,
        stdout=(tmp_path / "daemon.out").open("w"),
        stderr=(tmp_path / "daemon.log").open("w"),
    )

    def launch(run_id: str, seconds: float) -> None:
        cfg = {"ops": {"nap": {"config": {"seconds": seconds, "pid_file": str(tmp_path / f"{run_id}.pid")}}}}
        subprocess.run(
            [str(BIN / "dagster"), "job", "launch", "-w", str(workspace), "-j", "nap_job",
             "--run-id", run_id, "--config-json", json.dumps(cfg)],
            cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:

            def status(run_id: str) -> dg.DagsterRunStatus:
                return instance.get_run_by_id(run_id).status

            killed, waiting = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
            pid_file = tmp_path / f"{killed}.pid"
            in_process = subprocess.Popen(
                [sys.executable, str(tmp_path / "sleepy.py"), killed, str(pid_file)], cwd=tmp_path, env=env
            )
            pid = int(
                _wait("the first run's process", lambda: pid_file.is_file() and pid_file.read_text(), 120)
            )
            assert status(killed) == dg.DagsterRunStatus.STARTED
            launch(waiting, 0)
            assert status(waiting) == dg.DagsterRunStatus.QUEUED

            assert pid == in_process.pid
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            in_process.wait()
            _wait(
                f"the killed run to be marked failed (daemon log: {tmp_path / 'daemon.log'})",
                lambda: status(killed) == dg.DagsterRunStatus.FAILURE,
                45,
            )
            marked_after = time.monotonic() - killed_at
            print(f"run monitoring marked the killed run failed {marked_after:.1f} s after SIGKILL")
            _wait("the queued run to finish", lambda: status(waiting) == dg.DagsterRunStatus.SUCCESS, 120)
            messages = [e.message for e in instance.all_logs(killed)]
            assert any(f"(pid {pid}) is gone" in m for m in messages)
    finally:
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
