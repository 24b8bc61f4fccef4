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


def _wait_for(what: str, predicate, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"waited {timeout_s:.0f} s for {what}"
        time.sleep(3)
    return value


def _latest(instance, asset: str, partition: str):
    """The latest materialisation record of an asset partition, or None."""
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def _feature_ids(folder: Path) -> set[str]:
    import pandas as pd

    try:
        return set(pd.read_parquet(folder)["creative_id"])
    except (OSError, ValueError):  # a part being replaced this instant
        return set()


def test_a_new_creative_reaches_creative_features_with_no_launch(dagster_dev: str, smoke_pipeline):
    import dagster as dg

    from creative_assets.automation import TRAINING_ASSETS
    from creative_assets.detection.batch_detect import ends_batch

    root, cfg = smoke_pipeline.root, smoke_pipeline.settings
    instance = dg.DagsterInstance.from_config(str(smoke_pipeline.dagster_home))
    before = {r.run_id for r in instance.get_runs()}
    creatives = root / "raw" / "acme" / "creatives"
    # a name that joins a batch rather than closing one, so exactly one batch changes
    new_id = next(
        f"images/weekly_drop_{i:03d}.jpg"
        for i in range(100)
        if not ends_batch(f"images/weekly_drop_{i:03d}.jpg", cfg.detection.batch_size)
    )
    shutil.copyfile(sorted(creatives.glob("images/*.jpg"))[0], creatives / new_id)

    features = root / "warehouse" / "creative_features" / "brand=acme"
    _wait_for("the new creative in creative_features", lambda: new_id in _feature_ids(features), 300)

    runs = [r for r in instance.get_runs() if r.run_id not in before]
    selected = {r.run_id: {k.to_user_string() for k in r.asset_selection or ()} for r in runs}
    (run,) = [r for r in runs if "creative_features" in selected[r.run_id]]
    assert run.tags.get("dagster/from_automation_condition") == "true"
    assert run.tags.get("dagster/partition") == "acme"
    assert not set(TRAINING_ASSETS) & set().union(*selected.values())
    detections = _latest(instance, "detections", "acme").asset_materialization.metadata
    written, reused = detections["batches_written"].value, detections["batches_reused"].value
    print(f"one new creative: {written} detection batch written, {reused} reused")
    assert written == 1 and reused >= 1


def test_new_labels_mark_the_datasets_unsynced_in_the_ui(dagster_dev: str, smoke_pipeline, browser, tmp_path):
    import dagster as dg

    from creative_assets.partition_keys import brand_object_key

    root = smoke_pipeline.root
    instance = dg.DagsterInstance.from_config(str(smoke_pipeline.dagster_home))
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    url = f"{dagster_dev}/assets/coco_datasets?view=partitions&partition=acme%7Cbranding"

    def open_pair() -> None:
        page.goto(url, wait_until="networkidle")
        page.get_by_text("Latest materialization").first.wait_for(timeout=30_000)

    # Other tests of the session change the shared graph (a brand without labels joins the pooled inputs), so
    # rebuild the pair first: it starts in sync, whatever ran before.
    from creative_assets.definitions import all_assets, local_resources

    rebuilt = dg.materialize(
        all_assets,
        selection=dg.AssetSelection.assets("coco_datasets"),
        partition_key=str(brand_object_key("acme", "branding")),
        instance=instance,
        resources=local_resources(str(root), "smoke"),
    )
    assert rebuilt.success
    open_pair()
    assert page.get_by_text("Unsynced").count() == 0
    label_files = sorted((root / "raw" / "acme" / "labels").iterdir())
    assert len(label_files) >= 2
    labels_before = _latest(instance, "labels", "acme").storage_id
    shutil.move(label_files[-1], tmp_path / label_files[-1].name)  # one of the brand's label exports goes

    # the raw-files sensor records the change, automation re-reads the labels; training stays as it was
    _wait_for(
        "labels re-read by automation",
        lambda: _latest(instance, "labels", "acme").storage_id > labels_before,
        300,
    )
    open_pair()
    badge = page.get_by_text("Unsynced").first
    badge.wait_for(timeout=30_000)
    badge.hover()
    page.get_by_text("has a new data version").first.wait_for(timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "coco_datasets_unsynced.png"))
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
