"""labels and coco_datasets materialised from in-memory upstreams, including the `brand|object` key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from pycocotools.coco import COCO

from creative_assets.assets.datasets import coco_datasets, labels
from creative_assets_tests.support.asset_runs import (
    BRAND,
    brand_context,
    ingest_in_memory,
    invoke,
    pair_context,
    smoke_settings,
    tiny_data_root,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data_root(tmp_path_factory.mktemp("datasets") / "data", brands=(BRAND, "globex"))


@pytest.fixture(scope="module")
def ingested(root: Path) -> dict[str, pd.DataFrame]:
    return ingest_in_memory(root)


def test_labels_metadata_counts_the_rows_it_returns(root: Path, ingested: dict[str, pd.DataFrame]) -> None:
    run = invoke(
        labels,
        brand_context(),
        settings=smoke_settings(root),
        creative_manifest=ingested["creative_manifest"],
        video_frames=ingested["video_frames"],
    )
    rows = run.value
    assert run.checks["labels_valid"].passed and run.meta("errors") == 0
    assert run.meta("labelled_images") == rows["image_path"].nunique() > 0
    assert run.meta("boxes") == int(rows["category"].notna().sum())
    assert set(rows["creative_id"]) <= set(ingested["creative_manifest"]["creative_id"])


def test_a_brand_without_label_files_has_no_labels_and_no_errors(
    root: Path, ingested: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    bare = tmp_path / "data"
    shutil.copytree(root, bare)
    shutil.rmtree(bare / "raw" / BRAND / "labels")

    run = invoke(
        labels,
        brand_context(),
        settings=smoke_settings(bare),
        creative_manifest=ingested["creative_manifest"],
        video_frames=ingested["video_frames"],
    )

    assert run.value.empty
    assert (run.meta("labelled_images"), run.meta("boxes"), run.meta("errors")) == (0, 0, 0)
    assert run.checks["labels_valid"].passed


def test_coco_datasets_for_a_brand_object_key_writes_three_valid_coco_splits(
    root: Path, ingested: dict[str, pd.DataFrame]
) -> None:
    run = invoke(
        coco_datasets,
        pair_context(BRAND, "branding"),
        settings=smoke_settings(root),
        labels=ingested["labels"],
    )

    table = run.value
    assert run.meta("status") == "ok"
    assert run.checks["dataset_valid"].passed
    assert sorted(table["split"]) == ["test", "train", "valid"]
    for split in table.itertuples():
        coco = COCO(str(root / split.json_path))  # pycocotools reads what a trainer will read
        assert len(coco.getImgIds()) == split.images
        assert len(coco.getAnnIds()) == split.annotations
        assert {c["name"] for c in coco.loadCats(coco.getCatIds())} <= {"logo", "product", "brand_cue"}
    assert int(table["images"].sum()) == run.meta("labelled_images")
    assert str(run.meta("samples")).count("data:image/png;base64,") == 1
    # the box-size table counts every training box (pooled row when there are several categories)
    train_boxes = int(table.loc[table["split"] == "train", "annotations"].iloc[0])
    sizes = str(run.meta("box_sizes"))
    assert "under_16px" in sizes
    assert f"| {train_boxes} |" in sizes


def test_a_pair_without_labels_materialises_as_no_labels(
    root: Path, ingested: dict[str, pd.DataFrame]
) -> None:
    no_boxes = ingested["labels"].assign(category=None)

    run = invoke(
        coco_datasets, pair_context(BRAND, "branding"), settings=smoke_settings(root), labels=no_boxes
    )

    assert run.value.empty
    assert list(run.value.columns) == [
        "split",
        "json_path",
        "images",
        "positive_images",
        "annotations",
        "by_category",
        "fingerprint",
    ]
    assert (run.meta("status"), run.meta("reason")) == ("no labels", "no labels")
    assert run.checks["dataset_valid"].passed


def test_pooled_faces_take_every_brands_labels(root: Path, ingested: dict[str, pd.DataFrame]) -> None:
    other = ingest_in_memory(root, "globex")["labels"]
    by_brand = {"globex": other, BRAND: ingested["labels"]}

    run = invoke(coco_datasets, pair_context(BRAND, "face"), settings=smoke_settings(root), labels=by_brand)

    assert run.meta("pooled_brands") == "acme, globex"
    pooled = pd.concat([other, ingested["labels"]])
    assert run.meta("labelled_images") == pooled["image_path"].nunique()


def test_coco_files_of_the_old_layout_under_the_warehouse_are_removed_and_listed(
    root: Path, ingested: dict[str, pd.DataFrame]
) -> None:
    old = root / "warehouse" / "coco_datasets" / f"brand={BRAND}" / "object=branding"
    old.mkdir(parents=True, exist_ok=True)
    for split in ("train", "valid", "test"):
        (old / f"{split}.json").write_text('{"images": [], "annotations": [], "categories": []}')
    other = root / "warehouse" / "coco_datasets" / f"brand={BRAND}" / "object=face" / "train.json"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("{}")

    run = invoke(
        coco_datasets,
        pair_context(BRAND, "branding"),
        settings=smoke_settings(root),
        labels=ingested["labels"],
    )

    assert run.meta("removed_legacy_coco_files") == [
        f"warehouse/coco_datasets/brand={BRAND}/object=branding/{s}.json" for s in ("test", "train", "valid")
    ]
    assert not list(old.rglob("*.json"))
    assert other.is_file()  # another pair's files wait for that pair's run
    other.unlink()
