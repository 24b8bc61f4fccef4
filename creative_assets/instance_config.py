"""The Dagster instance's settings file (`$DAGSTER_HOME/dagster.yaml`) the project runs with."""

from __future__ import annotations

from pathlib import Path

import yaml

from creative_assets.jobs import ACCELERATOR_TAG

# Runs that train or detect carry ACCELERATOR_TAG; the run queue starts one at a time so a backfill of five
# objects never runs five trainings on the same cores or GPU. Ingestion runs are not limited.
_BASE_YAML = f"""\
telemetry:
  enabled: false
nux:
  enabled: false
run_queue:
  max_concurrent_runs: 4
  tag_concurrency_limits:
    - key: "{ACCELERATOR_TAG}"
      limit: 1
"""

# A run whose process dies (SIGKILL, out of memory) is marked failed by the daemon's run monitoring within
# about one poll interval, so it frees its queue slot; LocalRunLauncher supplies the health check the default
# launcher lacks (creative_assets/run_health.py). The daemon runs inside `dagster dev`, or as
# `dagster-daemon run`.
RUN_MONITORING_POLL_S = 10
_MONITORING_YAML = {
    "run_launcher": """\
run_launcher:
  module: creative_assets.run_health
  class: LocalRunLauncher
""",
    "run_monitoring": f"""\
run_monitoring:
  enabled: true
  poll_interval_seconds: {RUN_MONITORING_POLL_S}
  start_timeout_seconds: 120
  cancel_timeout_seconds: 120
  max_resume_run_attempts: 0
""",
}

DAGSTER_YAML = _BASE_YAML + "".join(_MONITORING_YAML.values())


def ensure_dagster_home(home: Path) -> Path:
    """Create `home` with the project's dagster.yaml unless one exists; returns the home.

    An existing file keeps its settings; run monitoring and the launcher it needs are added when the file
    configures neither (homes created before run monitoring was enabled).
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
        return home
    text = config.read_text(encoding="utf-8")
    existing = yaml.safe_load(text) or {}
    missing = [block for key, block in _MONITORING_YAML.items() if key not in existing]
    if len(missing) == len(_MONITORING_YAML):
        config.write_text(text.rstrip("\n") + "\n" + "".join(missing), encoding="utf-8")
    return home
