"""The whole asset graph on generated data (smoke profile): every table lands where DESIGN says."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from creative_assets.layout import DataRoot
from creative_assets.pipeline_runs import print_summary
from creative_assets.tables.warehouse import read_table


@pytest.fixture(scope="module")
def root(smoke_pipeline) -> DataRoot:
    return DataRoot(smoke_pipeline.root)


def test_manifest_lists_every_creative(root: DataRoot):
    manifest = read_table(root.warehouse("creative_manifest", "acme"))
    on_disk = sorted(
        p.relative_to(root.creatives("acme")).as_posix() for p in root.creatives("acme").rglob("*.*")
    )
    assert sorted(manifest["creative_id"]) == on_disk
    assert set(manifest["media_type"]) == {"image", "video"}


def test_every_tenth_frame_is_extracted(root: DataRoot):
    frames = read_table(root.warehouse("video_frames", "acme"))
    assert len(frames) > 0
    assert (frames["frame_index"] % 10 == 0).all()
    assert all((root.root / p).is_file() for p in frames["path"])


def test_coco_datasets_written_outside_the_warehouse(root: DataRoot):
    folder = root.warehouse("coco_datasets", "acme", "branding")
    table = read_table(folder)
    assert list(table["split"]) == ["train", "valid", "test"]
    assert list(table["json_path"]) == [
        f"datasets/acme/branding/{s}.json" for s in ("train", "valid", "test")
    ]
    assert all((root.root / p).is_file() for p in table["json_path"])
    assert not list(root.root.joinpath("warehouse").rglob("*.json"))
    # Per-category counts agree with the COCO file they describe.
    for row in table.itertuples():
        coco = json.loads((root.root / row.json_path).read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        boxes = {n: sum(names[a["category_id"]] == n for a in coco["annotations"]) for n in names.values()}
        assert {c["category"]: c["boxes"] for c in json.loads(row.by_category)} == boxes


def test_pooled_objects_train_on_every_brand(root: DataRoot):
    train = json.loads((root.datasets("acme", "face") / "train.json").read_text())
    valid = json.loads((root.datasets("acme", "face") / "valid.json").read_text())
    test = json.loads((root.datasets("acme", "face") / "test.json").read_text())
    brands = {img["file_name"].split("/")[1] for split in (train, valid, test) for img in split["images"]}
    assert brands == {"acme", "globex"}


def test_grid_has_one_row_per_trial(smoke_pipeline, root: DataRoot):
    grid = read_table(root.warehouse("grid_search", "acme", "branding"))
    cfg = smoke_pipeline.settings
    assert len(grid) == len(cfg.grid.max_iter) * len(cfg.grid.batch_size_per_image)
    assert {"accuracy_20", "accuracy_80", "AP", "AP50", "train_seconds"} <= set(grid.columns)


def test_chosen_model_is_published_with_lineage(root: DataRoot):
    import hashlib
    import json

    chosen = read_table(root.warehouse("chosen_model", "acme", "branding")).iloc[0]
    grid = read_table(root.warehouse("grid_search", "acme", "branding")).set_index("trial")
    config = json.loads((root.models("acme", "branding") / "chosen" / "config.json").read_text())
    published = root.root / chosen["checkpoint"]
    assert chosen["status"] == "model"
    # the id is the checkpoint's own hash, and the record names the trial the grid ranks first
    assert chosen["model_id"] == config["model_id"] == hashlib.sha256(published.read_bytes()).hexdigest()[:16]
    assert config["trial"] == chosen["trial"]
    assert grid.loc[chosen["trial"], "mean_accuracy"] == grid["mean_accuracy"].max()
    trial = grid.loc[chosen["trial"]]
    assert config["params"]["SOLVER.MAX_ITER"] == int(trial["max_iter"]) == int(chosen["max_iter"])
    assert config["params"]["ROI_HEADS.BATCH_SIZE_PER_IMAGE"] == int(trial["batch_size_per_image"])
    assert config["classes"] == ["logo", "product", "brand_cue"] == json.loads(chosen["classes"])
    assert (
        config["dataset_fingerprint"]
        == read_table(root.warehouse("coco_datasets", "acme", "branding"))["fingerprint"].iloc[0]
    )


def test_detections_repeat_the_chosen_models_baseline_verdict_and_the_summary_says_it(
    smoke_pipeline, root: DataRoot, capsys
):
    chosen = pd.concat(
        [read_table(root.warehouse("chosen_model", "acme", o)) for o in smoke_pipeline.settings.object_names]
    )
    detections = read_table(root.warehouse("detections", "acme"))
    flags = detections.groupby(["object", "model_id"])["model_beats_baseline"].unique()
    assert {k: list(v) for k, v in flags.items()} == {
        (r.object, r.model_id): [bool(r.beats_baseline)] for r in chosen.itertuples()
    }
    print_summary(smoke_pipeline.settings, ["acme"])
    printed = capsys.readouterr().out
    for r in chosen.itertuples():
        said = f"acme|{r.object}: the chosen model does NOT beat the 'always absent' baseline"
        assert (said in printed) == (not r.beats_baseline)


def test_thresholds_lie_in_the_swept_range(root: DataRoot):
    th = read_table(root.warehouse("optimal_thresholds", "acme", "branding"))
    assert list(th["class_name"]) == ["logo", "product", "brand_cue"]
    assert th["threshold"].between(0.2, 0.99).all()


def test_features_cover_every_creative(root: DataRoot):
    manifest = read_table(root.warehouse("creative_manifest", "globex"))
    features = read_table(root.warehouse("creative_features", "globex"))
    assert sorted(features["creative_id"]) == sorted(manifest["creative_id"])


def test_mmm_panel_is_weekly(root: DataRoot):
    panel = read_table(root.warehouse("mmm_features", "acme"))
    weeks = pd.to_datetime(panel["week_start"])
    assert len(panel) > 0 and (weeks.dt.day_of_week == 0).all()


def test_mmm_panel_stacks_every_brand_on_one_week_grid(root: DataRoot):
    panel = pd.read_parquet(root.root / "warehouse" / "mmm_panel")
    weeks = panel.groupby("brand", observed=True)["week_start"].apply(list)
    assert sorted(weeks.index) == ["acme", "globex"] and weeks["acme"] == weeks["globex"]
    assert (panel["week_start"].dt.day_of_week == 0).all()
    # The demo's channels: display, social, video; each channel's impressions add up to the week's.
    channels = ["impressions_display", "impressions_social", "impressions_video"]
    assert (panel[channels].sum(axis=1) == panel["impressions"]).all() and panel["impressions"].sum() > 0


def test_duckdb_reads_the_hive_partitioned_detections(root: DataRoot):
    pattern = (root.root / "warehouse/detections/*/*.parquet").as_posix()
    counts = dict(
        duckdb.sql(
            f"select brand, count(*) from read_parquet('{pattern}', hive_partitioning=true) group by brand"
        ).fetchall()
    )
    expected = {b: len(read_table(root.warehouse("detections", b))) for b in ("acme", "globex")}
    assert counts == expected and all(n > 0 for n in expected.values())


def test_detection_rerun_reuses_every_batch(smoke_pipeline, root: DataRoot):
    from creative_assets.jobs import DETECT_ASSETS
    from creative_assets.pipeline_runs import _materialize

    before = {
        p.name: p.stat().st_mtime_ns for p in root.warehouse("detections", "acme").glob("part-*.parquet")
    }
    _materialize(smoke_pipeline.instance, DETECT_ASSETS[:1], "acme", smoke_pipeline.settings)
    after = {
        p.name: p.stat().st_mtime_ns for p in root.warehouse("detections", "acme").glob("part-*.parquet")
    }
    assert before == after and before


def _grid_without_timing(df: pd.DataFrame) -> pd.DataFrame:
    # a trial redone alone keeps its shared_run label (the run it belongs to in the whole grid)
    columns = ["train_seconds", "checkpoint"]
    return df.drop(columns=columns).sort_values("trial").reset_index(drop=True)


def test_ray_executor_recomputes_a_lost_trial_and_batch_identically(
    smoke_pipeline, root: DataRoot, monkeypatch: pytest.MonkeyPatch
):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    from creative_assets.pipeline_runs import _materialize

    grid_before = read_table(root.warehouse("grid_search", "acme", "branding"))
    detections_before = read_table(root.warehouse("detections", "acme"))
    # lose one finished trial and one committed batch, then let the Ray path redo them through the assets
    next(root.models("acme", "branding").glob("grid/*/trials/*/result.json")).unlink()
    next(root.warehouse("detections", "acme").glob("part-*.parquet")).unlink()
    monkeypatch.setenv("CREATIVE_ASSETS_EXECUTOR", "ray")
    _materialize(smoke_pipeline.instance, ["grid_search"], "acme|branding", smoke_pipeline.settings)
    _materialize(smoke_pipeline.instance, ["detections"], "acme", smoke_pipeline.settings)

    grid_after = read_table(root.warehouse("grid_search", "acme", "branding"))
    pd.testing.assert_frame_equal(_grid_without_timing(grid_after), _grid_without_timing(grid_before))
    keys = ["creative_id", "frame_index", "object", "class_name", "x_min", "y_min"]
    after = read_table(root.warehouse("detections", "acme")).sort_values(keys).reset_index(drop=True)
    before = detections_before.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(after.drop(columns="score"), before.drop(columns="score"))
    assert (after["score"] - before["score"]).abs().max() < 1e-4


def test_brand_without_labels_gets_no_model_but_pooled_objects_and_tables(smoke_pipeline, root: DataRoot):
    import shutil

    from creative_assets.demo.synthetic import generate_demo_data
    from creative_assets.pipeline_runs import run_detection_stage, run_ingest, run_training

    brand = "hooli"
    generate_demo_data(
        root.root, seed=3, brands=(brand,), labelled_images=4, unlabelled_images=2, labelled_videos=0,
        unlabelled_videos=1, image_size=(128, 96), video_seconds=2.0, impressions=False,
    )  # fmt: skip
    shutil.rmtree(root.labels(brand))
    cfg = smoke_pipeline.settings
    run_ingest(smoke_pipeline.instance, cfg, [brand])
    run_training(smoke_pipeline.instance, cfg, [brand])
    run_detection_stage(smoke_pipeline.instance, cfg, [brand])

    branding = read_table(root.warehouse("chosen_model", brand, "branding")).iloc[0]
    assert branding["status"] == "no model"
    assert read_table(root.warehouse("coco_datasets", brand, "branding")).empty
    face = read_table(root.warehouse("chosen_model", brand, "face")).iloc[0]
    assert face["status"] == "model"  # pooled: trained on the other brands' face labels
    detections = read_table(root.warehouse("detections", brand))
    assert set(detections["object"]) <= {"face"}
    features = read_table(root.warehouse("creative_features", brand))
    assert len(features) == len(read_table(root.warehouse("creative_manifest", brand)))
    assert not features["branding_present"].any()
