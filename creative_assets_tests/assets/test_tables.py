"""The MMM table assets materialised with Dagster into a temp data root, features given in memory."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from creative_assets.assets.tables import creative_features as creative_features_asset
from creative_assets.assets.tables import mmm_features, mmm_panel
from creative_assets.partitions import BRAND_PARTITIONS_NAME, brand_partitions
from creative_assets.resources.settings_resource import SettingsResource
from creative_assets.resources.warehouse_io_manager import TableRef, WarehouseIOManager
from creative_assets.tables.schemas import DETECTIONS, unmatched_schema
from creative_assets.tables.warehouse import write_part
from creative_assets_tests.support.asset_runs import brand_context, instance_with_brands, invoke
from creative_assets_tests.support.mmm_data import mmm_data

DATA = mmm_data(seed=3)
SETTINGS = "objects:\n  - {name: logo}\n  - {name: product}\n"


@dg.asset(partitions_def=brand_partitions, io_manager_key="warehouse_io_manager")
def creative_features(context: dg.AssetExecutionContext) -> pd.DataFrame:
    """The brand's rows of the generated features (in place of the detection stage)."""
    return DATA.features[DATA.features["brand"] == context.partition_key].reset_index(drop=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "impressions.csv").write_text(DATA.impressions_csv, encoding="utf-8")
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)
    return tmp_path


def run(root: Path, brand: str, instance: dg.DagsterInstance, **overrides) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(BRAND_PARTITIONS_NAME, [brand])
    return dg.materialize(
        [creative_features, mmm_features, mmm_panel],
        partition_key=brand,
        instance=instance,
        resources={
            "settings": SettingsResource(data_root=str(root), profile="smoke", overrides=overrides),
            "warehouse_io_manager": WarehouseIOManager(data_root=str(root)),
        },
    )


def test_each_brand_partition_joins_one_balanced_panel(root: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    for brand in ("acme", "globex"):
        result = run(root, brand, instance)
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert [(c.check_name, c.passed) for c in checks] == [("one_schema_across_brands", True)]

    panel = pd.read_parquet(root / "warehouse" / "mmm_panel")
    weeks = panel.groupby("brand", observed=True)["week_start"].apply(list)
    assert weeks["acme"] == weeks["globex"]
    assert panel.groupby(["week_start", "brand"], observed=True).size().max() == 1
    assert {"spend_paid_social", "spend_tv_logo", "spend_search_no_product", "share_logo"} <= set(
        panel.columns
    )
    assert (root / "warehouse" / "mmm_features" / "brand=acme" / "part-00000.parquet").is_file()


def test_unknown_creatives_land_in_their_own_table(root: Path) -> None:
    run(root, "acme", dg.DagsterInstance.ephemeral())
    unmatched = pd.read_parquet(root / "warehouse" / "mmm_unmatched_creatives")
    assert unmatched["creative_id"].tolist() == ["img/acme_unknown.png"]


def test_with_every_creative_known_the_unmatched_table_is_a_zero_row_file(root: Path) -> None:
    csv = root / "raw" / "impressions.csv"
    csv.write_text("".join(line for line in csv.read_text().splitlines(True) if "unknown" not in line))
    run(root, "globex", dg.DagsterInstance.ephemeral())
    part = root / "warehouse" / "mmm_unmatched_creatives" / "brand=globex" / "part-00000.parquet"
    table = pq.read_table(part)
    assert table.num_rows == 0
    assert table.column_names == [c for c in unmatched_schema().columns if c != "brand"]


def test_week_start_setting_reaches_the_panel(root: Path) -> None:
    run(root, "acme", dg.DagsterInstance.ephemeral(), week_start="sunday")
    panel = pd.read_parquet(root / "warehouse" / "mmm_panel")
    assert (panel["week_start"].dt.day_of_week == 6).all()


def test_another_brand_written_with_other_columns_fails_the_check(root: Path) -> None:
    stale = root / "warehouse" / "mmm_panel" / "brand=globex" / "part-00000.parquet"
    stale.parent.mkdir(parents=True)
    pd.DataFrame({"week_start": pd.to_datetime(["2024-01-01"]), "impressions": [1]}).to_parquet(stale)
    result = run(root, "acme", dg.DagsterInstance.ephemeral())
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["differing_brands"].value == "globex"


def test_without_an_impressions_file_nothing_is_written(root: Path) -> None:
    (root / "raw" / "impressions.csv").unlink()
    result = run(root, "acme", dg.DagsterInstance.ephemeral())
    assert result.success
    assert not (root / "warehouse" / "mmm_panel").exists()
    assert not (root / "warehouse" / "mmm_unmatched_creatives").exists()


# Two creatives of acme: a still with a logo above its threshold, a video whose only logo box is below it.
MANIFEST = pd.DataFrame(
    {
        "brand": "acme",
        "creative_id": ["a.jpg", "v.mp4"],
        "media_type": ["image", "video"],
        "duration_s": [None, 2.0],
    }
)
FRAMES = pd.DataFrame(
    {"brand": "acme", "creative_id": "v.mp4", "frame_index": [0, 10], "timestamp_s": [0.0, 1.0]}
)


def _detections() -> pd.DataFrame:
    rows = [
        ("a.jpg", "image", None, None, 0.9, True),
        ("v.mp4", "video", 10, 1.0, 0.3, False),
    ]
    df = pd.DataFrame(
        [
            {
                "brand": "acme", "creative_id": cid, "media_type": media, "frame_index": index,
                "timestamp_s": ts, "object": "logo", "class_name": "logo", "score": score, "x_min": 0.0,
                "y_min": 0.0, "x_max": 10.0, "y_max": 10.0, "box_area_frac": 0.25, "above_threshold": above,
                "threshold": 0.5, "model_id": "m1", "model_beats_baseline": True, "backend": "torchvision",
                "batch": "00000",
            }
            for cid, media, index, ts, score, above in rows
        ]
    )  # fmt: skip
    return df[DETECTIONS.columns].astype(DETECTIONS.dtypes)


def _features(root: Path, detections: object):
    return invoke(
        creative_features_asset,
        brand_context("acme"),
        settings=SettingsResource(data_root=str(root), profile="smoke"),
        detections=detections,
        creative_manifest=MANIFEST,
        video_frames=FRAMES,
    )


def test_creative_features_read_detections_handed_over_as_a_table_ref(root: Path) -> None:
    folder = root / "warehouse" / "detections" / "brand=acme"
    write_part(folder / "part-00000.parquet", _detections())

    run = _features(root, TableRef(folder="warehouse/detections/brand=acme", rows=2))

    features = run.value.set_index("creative_id")
    assert features["logo_present"].to_dict() == {"a.jpg": True, "v.mp4": False}
    assert features["logo_max_score"].to_dict() == {"a.jpg": 0.9, "v.mp4": 0.3}
    assert features.loc["v.mp4", "frames_sampled"] == 2
    assert (run.meta("creatives"), run.meta("share_with_logo"), run.meta("share_with_product")) == (
        2,
        0.5,
        0.0,
    )
    assert {name: c.passed for name, c in run.checks.items()} == {
        "features_schema": True,
        "every_creative_covered": True,
    }


def test_creative_features_from_a_data_frame_equal_those_from_a_table_ref(root: Path) -> None:
    folder = root / "warehouse" / "detections" / "brand=acme"
    write_part(folder / "part-00000.parquet", _detections())

    from_ref = _features(root, TableRef(folder="warehouse/detections/brand=acme", rows=2)).value
    from_frame = _features(root, _detections()).value

    pd.testing.assert_frame_equal(from_frame, from_ref)


def test_a_creative_listed_twice_fails_the_one_row_per_creative_check(root: Path) -> None:
    manifest = pd.concat([MANIFEST, MANIFEST.iloc[[0]]], ignore_index=True)  # a.jpg listed twice
    run = invoke(
        creative_features_asset,
        brand_context("acme"),
        settings=SettingsResource(data_root=str(root), profile="smoke"),
        detections=_detections(),
        creative_manifest=manifest,
        video_frames=FRAMES,
    )
    assert not run.checks["every_creative_covered"].passed


@pytest.mark.parametrize(
    ("impressions", "status"),
    [
        (None, "no impressions"),
        ("date,brand,creative_id,impressions\n2024-01-01,globex,x.jpg,5\n", "no impressions for acme"),
    ],
)
def test_without_impressions_for_the_brand_mmm_features_is_only_observed(
    tmp_path: Path, impressions: str | None, status: str
) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)
    if impressions is not None:
        (tmp_path / "raw" / "impressions.csv").write_text(impressions)

    result = dg.materialize_to_memory(
        [creative_features, mmm_features],
        partition_key="acme",
        instance=instance_with_brands("acme"),
        resources={"settings": SettingsResource(data_root=str(tmp_path), profile="smoke")},
    )

    assert result.success
    assert [m.asset_key.path for m in result.get_asset_materialization_events()] == [["creative_features"]]
    (observation,) = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.metadata["status"].value == status


def test_without_impressions_the_panel_is_observed_for_both_tables_and_its_check_passes(
    tmp_path: Path,
) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "creative_assets.yaml").write_text(SETTINGS)

    result = dg.materialize_to_memory(
        [creative_features, mmm_panel],
        partition_key="acme",
        instance=instance_with_brands("acme"),
        resources={"settings": SettingsResource(data_root=str(tmp_path), profile="smoke")},
    )

    assert result.success
    observed = sorted(
        (e.asset_key.path[-1], e.asset_observation_data.asset_observation.metadata["status"].value)
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    )
    assert observed == [("mmm_panel", "no impressions"), ("mmm_unmatched_creatives", "no impressions")]
    (check,) = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed, check.metadata["status"].value) == (
        "one_schema_across_brands",
        True,
        "no impressions",
    )
