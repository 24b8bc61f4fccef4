"""The Dagster UI in a real browser, and a brand backfill run by the daemon that `dagster dev` starts."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.fixture(scope="module")
def dagster_dev(smoke_pipeline) -> Iterator[str]:
    """`dagster dev` on loopback over the smoke pipeline's instance; yields the base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(smoke_pipeline.dagster_home),
        "CREATIVE_ASSETS_DATA": str(smoke_pipeline.root),
        "CREATIVE_ASSETS_PROFILE": "smoke",
        # this checkout's package, also for the instance's run launcher (creative_assets.run_health)
        "PYTHONPATH": str(REPO),
    }
    log = open(smoke_pipeline.dagster_home / "dagster_dev.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [_bin("dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGINT reaches the webserver and the daemon
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dagster dev did not start: {(smoke_pipeline.dagster_home / 'dagster_dev.log').read_text()[-3000:]}"
                    ) from None
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # dagster dev ignores SIGTERM when backgrounded
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it with apt-get)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],  # fmt: skip
        )
        yield b
        b.close()


def test_asset_graph_shows_every_group(dagster_dev: str, browser):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{dagster_dev}/asset-groups", wait_until="networkidle")
    for group in ("ingest", "datasets", "training", "detection", "tables"):
        page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "asset_graph.png"))
    page.close()


def test_chosen_model_heat_map_renders_in_the_page(dagster_dev: str, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(
        f"{dagster_dev}/assets/chosen_model?view=events&partition=acme%7Cbranding", wait_until="networkidle"
    )
    page.locator("tr", has_text="accuracy_heatmaps").get_by_text("Show Markdown").click()
    image = page.locator("img[src^='data:image/png']").first
    image.wait_for(timeout=30_000)
    box = image.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 200
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chosen_model_heatmaps.png"))
    page.close()


def test_new_brand_folder_is_ingested_by_the_sensor_then_backfilled(dagster_dev: str, smoke_pipeline):
    import dagster as dg

    from creative_assets.demo.synthetic import generate_demo_data

    brand = "initech"
    generate_demo_data(
        smoke_pipeline.root, seed=7, brands=(brand,), labelled_images=12, unlabelled_images=2,
        labelled_videos=1, unlabelled_videos=0, image_size=(128, 96), video_seconds=2.0, impressions=False,
    )  # fmt: skip
    instance = dg.DagsterInstance.from_config(str(smoke_pipeline.dagster_home))
    # the brand folder sensor (running in dagster dev) adds the partition and ingests the new brand
    deadline = time.monotonic() + 300
    while brand not in {str(k) for k in instance.get_materialized_partitions(dg.AssetKey("labels"))}:
        assert time.monotonic() < deadline, "the sensor did not ingest the new brand within 5 minutes"
        time.sleep(3)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(smoke_pipeline.dagster_home),
        "CREATIVE_ASSETS_DATA": str(smoke_pipeline.root),
        "CREATIVE_ASSETS_PROFILE": "smoke",
        # this checkout's package, also for the instance's run launcher (creative_assets.run_health)
        "PYTHONPATH": str(REPO),
    }
    launched = subprocess.run(
        [_bin("creative-assets"), "backfill", "--brand", brand],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    objects = smoke_pipeline.settings.object_names
    wanted = {f"{brand}|{o}" for o in objects}
    deadline = time.monotonic() + 480
    while True:
        backfills = instance.get_backfills()
        assert backfills, "no backfill was recorded"
        backfill = backfills[0]
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
        if backfill.status.value != "REQUESTED" and runs and all(r.is_finished for r in runs):
            break
        assert time.monotonic() < deadline, (
            f"backfill {backfill.status} with {len(runs)} runs after 8 minutes"
        )
        time.sleep(3)
    assert backfill.status.value in ("COMPLETED", "COMPLETED_SUCCESS"), backfill.status
    assert all(r.is_success for r in runs), [(r.run_id, r.status) for r in runs]
    done = instance.get_materialized_partitions(dg.AssetKey("chosen_model"))
    assert wanted <= {str(k) for k in done}
