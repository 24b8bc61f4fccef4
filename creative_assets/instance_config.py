"""The Dagster instance's settings file (`$DAGSTER_HOME/dagster.yaml`) the project runs with."""

from __future__ import annotations

from pathlib import Path

from creative_assets.jobs import ACCELERATOR_TAG

# Runs that train or detect carry ACCELERATOR_TAG; the run queue starts one at a time so a backfill of five
# objects never runs five trainings on the same cores or GPU. Ingestion runs are not limited.
DAGSTER_YAML = f"""\
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


def ensure_dagster_home(home: Path) -> Path:
    """Create `home` with the project's dagster.yaml unless one exists; returns the home."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    return home
