"""Grouped, seeded splits and the COCO files written from them, read back with pycocotools."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pycocotools.coco import COCO

from creative_assets.labels.coco_splits import (
    CLASS_BALANCE_COLUMNS,
    SPLITS,
    build_coco_datasets,
    dataset_fingerprint,
    split_images,
)
from creative_assets.labels.resolve import ANNOTATION_COLUMNS, ANNOTATION_DTYPES, LABEL_IMAGE_DTYPES
from creative_assets.layout import DataRoot, PathEscapeError

FRACTIONS = (0.7, 0.15, 0.15)


def label_images(
    videos: int = 0, frames_per_video: int = 0, stills: int = 0, brand: str = "acme"
) -> pd.DataFrame:
    """A label images table: `videos` videos with `frames_per_video` labelled frames each, plus stills."""
    rows = [
        {
            "brand": brand,
            "image_path": f"frames/{brand}/videos/v{v}.mp4/{10 * f:06d}.jpg",
            "creative_id": f"videos/v{v}.mp4",
            "frame_index": 10 * f,
            "width": 320,
            "height": 240,
            "source_file": f"raw/{brand}/labels/l.json",
        }
        for v in range(videos)
        for f in range(frames_per_video)
    ]
    rows += [
        {
            "brand": brand,
            "image_path": f"raw/{brand}/creatives/s{s}.jpg",
            "creative_id": f"s{s}.jpg",
            "frame_index": None,
            "width": 200,
            "height": 100,
            "source_file": f"raw/{brand}/labels/l.json",
        }
        for s in range(stills)
    ]
    return pd.DataFrame(rows, columns=list(LABEL_IMAGE_DTYPES)).astype(LABEL_IMAGE_DTYPES)


def boxes(items: list[tuple[str, str, tuple[float, float, float, float]]]) -> pd.DataFrame:
    """An annotations table from (image_path, category, corners)."""
    rows = [
        {
            "brand": "acme",
            "image_path": path,
            "category": category,
            "x_min": x0,
            "y_min": y0,
            "x_max": x1,
            "y_max": y1,
            "source_file": "raw/acme/labels/l.json",
            "record": f"annotations[{i}]",
        }
        for i, (path, category, (x0, y0, x1, y1)) in enumerate(items)
    ]
    return pd.DataFrame(rows, columns=ANNOTATION_COLUMNS).astype(ANNOTATION_DTYPES)


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data")


def load_coco(path: Path) -> COCO:
    return COCO(str(path))


# ------------------------------------------------------------------------------------------ split_images


def test_all_frames_of_a_video_land_in_one_split() -> None:
    images = label_images(videos=12, frames_per_video=5)
    split = split_images(images, FRACTIONS, seed=0)
    per_video = split.groupby(images["creative_id"]).nunique()
    assert (per_video == 1).all()
    assert set(split) == set(SPLITS)


def test_split_is_deterministic_for_a_seed_and_changes_with_the_seed() -> None:
    images = label_images(videos=10, frames_per_video=2, stills=30)
    first = split_images(images, FRACTIONS, seed=3)
    assert first.equals(
        split_images(images.sample(frac=1, random_state=1), FRACTIONS, seed=3).loc[images.index]
    )
    assert not first.equals(split_images(images, FRACTIONS, seed=4))


def test_a_creatives_split_does_not_move_when_unrelated_images_are_added() -> None:
    before = label_images(stills=40)
    after = pd.concat([before, label_images(videos=15, frames_per_video=2)], ignore_index=True)
    split_before = split_images(before, FRACTIONS, seed=0)
    split_after = split_images(after, FRACTIONS, seed=0)
    assert split_after.iloc[: len(before)].tolist() == split_before.tolist()


def test_split_sizes_follow_the_fractions_roughly() -> None:
    counts = split_images(label_images(stills=2000), FRACTIONS, seed=0).value_counts(normalize=True)
    assert counts["train"] == pytest.approx(0.7, abs=0.05)
    assert counts["valid"] == pytest.approx(0.15, abs=0.05)
    assert counts["test"] == pytest.approx(0.15, abs=0.05)


@pytest.mark.parametrize("seed", range(8))
def test_three_groups_fill_every_split(seed: int) -> None:
    images = label_images(videos=2, frames_per_video=3, stills=1)
    split = split_images(images, FRACTIONS, seed=seed)
    assert sorted(set(split)) == sorted(SPLITS)
    assert (split.groupby(images["creative_id"]).nunique() == 1).all()


def test_fewer_than_three_groups_leave_a_split_empty_without_error() -> None:
    split = split_images(label_images(stills=2), FRACTIONS, seed=0)
    assert len(split) == 2 and set(split) <= set(SPLITS)


@pytest.mark.parametrize("seed", range(6))
def test_three_positive_groups_give_valid_and_test_a_positive_each(seed: int) -> None:
    images = label_images(stills=40)
    positive = images["creative_id"].isin(["s0.jpg", "s1.jpg", "s2.jpg"])
    split = split_images(images, FRACTIONS, seed=seed, positive=positive)
    assert set(split[positive]) == set(SPLITS)


@pytest.mark.parametrize("seed", range(6))
def test_two_positive_groups_go_to_train_and_valid(seed: int) -> None:
    images = label_images(stills=30)
    positive = images["creative_id"].isin(["s0.jpg", "s1.jpg"])
    split = split_images(images, FRACTIONS, seed=seed, positive=positive)
    assert sorted(split[positive]) == ["train", "valid"]


def test_fractions_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        split_images(label_images(stills=3), (0.5, 0.2, 0.2), seed=0)


# ------------------------------------------------------------------------------------------ COCO files


def test_coco_files_load_with_pycocotools_and_round_trip_the_counts(root: DataRoot) -> None:
    images = label_images(videos=4, frames_per_video=3, stills=12)
    annotations = boxes(
        [(p, "logo", (10.0, 20.0, 50.0, 60.0)) for p in images["image_path"].iloc[::2]]
        + [(p, "product", (0.0, 0.0, 5.5, 7.25)) for p in images["image_path"].iloc[::3]]
    )
    result = build_coco_datasets(
        images, annotations, ["logo", "product"], FRACTIONS, 0, root.work("coco", "acme", "logo"), root
    )
    total_images = total_annotations = 0
    for row in result.table.itertuples(index=False):
        coco = load_coco(root.root / row.json_path)
        assert len(coco.getImgIds()) == row.images
        assert len(coco.getAnnIds()) == row.annotations
        assert len({a["image_id"] for a in coco.dataset["annotations"]}) == row.positive_images
        assert len(coco.getAnnIds(catIds=[1])) == row.n_logo
        assert len(coco.getAnnIds(catIds=[2])) == row.n_product
        total_images += row.images
        total_annotations += row.annotations
    assert (total_images, total_annotations) == (len(images), len(annotations))
    assert result.table["split"].tolist() == list(SPLITS)
    assert result.table["json_path"].tolist() == [f"work/coco/acme/logo/{s}.json" for s in SPLITS]


def test_boxes_are_written_as_xywh_pixels_with_area_and_file_names_from_the_data_root(root: DataRoot) -> None:
    images = label_images(stills=1)
    annotations = boxes([("raw/acme/creatives/s0.jpg", "logo", (10.0, 20.0, 50.0, 60.5))])
    result = build_coco_datasets(images, annotations, ["logo"], (1.0, 0.0, 0.0), 0, root.work("c"), root)
    coco = load_coco(result.paths["train"])
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert ann["bbox"] == [10.0, 20.0, 40.0, 40.5]
    assert ann["area"] == pytest.approx(1620.0)
    assert ann["iscrowd"] == 0
    (image,) = coco.loadImgs(coco.getImgIds())
    assert (image["file_name"], image["width"], image["height"]) == ("raw/acme/creatives/s0.jpg", 200, 100)
    assert (root.root / image["file_name"]).parent == root.creatives("acme")


def test_only_the_objects_categories_are_kept_and_other_images_stay_negatives(root: DataRoot) -> None:
    images = label_images(stills=9)
    annotations = boxes(
        [
            ("raw/acme/creatives/s0.jpg", "logo", (1, 1, 9, 9)),
            ("raw/acme/creatives/s1.jpg", "product", (1, 1, 9, 9)),
        ]
    )
    result = build_coco_datasets(images, annotations, ["logo"], FRACTIONS, 0, root.work("c"), root)
    assert result.table["images"].sum() == 9
    assert result.table["annotations"].sum() == 1
    assert result.table["positive_images"].sum() == 1
    all_categories = set()
    for path in result.paths.values():
        coco = load_coco(path)
        all_categories |= {c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert all_categories == {"logo"}


def test_category_ids_follow_the_given_order_and_metadata_maps_them(root: DataRoot) -> None:
    images = label_images(stills=3)
    result = build_coco_datasets(images, boxes([]), ["product", "logo"], FRACTIONS, 0, root.work("c"), root)
    categories = json.loads(result.paths["train"].read_text())["categories"]
    assert [(c["id"], c["name"]) for c in categories] == [(1, "product"), (2, "logo")]
    assert result.metadata == {
        "thing_classes": ["product", "logo"],
        "thing_dataset_id_to_contiguous_id": {1: 0, 2: 1},
    }
    assert list(result.table.columns[-2:]) == ["n_product", "n_logo"]


def test_class_balance_counts_positive_and_negative_images_per_split(root: DataRoot) -> None:
    images = label_images(stills=6)
    annotations = boxes([("raw/acme/creatives/s0.jpg", "logo", (1, 1, 9, 9))] * 2)
    result = build_coco_datasets(images, annotations, ["logo"], FRACTIONS, 0, root.work("c"), root)
    balance = result.class_balance
    assert list(balance.columns) == CLASS_BALANCE_COLUMNS
    assert balance["positive_images"].sum() == 1
    assert balance["boxes"].sum() == 2
    assert (balance["positive_images"] + balance["negative_images"]).tolist() == result.table[
        "images"
    ].tolist()


def test_rebuilding_writes_identical_files_and_fingerprint(root: DataRoot) -> None:
    images = label_images(videos=3, frames_per_video=2, stills=5)
    annotations = boxes([(p, "logo", (1.0, 2.0, 30.0, 40.0)) for p in images["image_path"]])
    first = build_coco_datasets(images, annotations, ["logo"], FRACTIONS, 7, root.work("c"), root)
    contents = {s: p.read_bytes() for s, p in first.paths.items()}
    second = build_coco_datasets(
        images.iloc[::-1], annotations.iloc[::-1], ["logo"], FRACTIONS, 7, root.work("c"), root
    )
    assert {s: p.read_bytes() for s, p in second.paths.items()} == contents
    assert second.fingerprint == first.fingerprint == dataset_fingerprint(first.paths.values())


def test_fingerprint_changes_when_a_split_file_changes(root: DataRoot) -> None:
    result = build_coco_datasets(
        label_images(stills=3), boxes([]), ["logo"], FRACTIONS, 0, root.work("c"), root
    )
    result.paths["test"].write_text("{}")
    assert dataset_fingerprint(result.paths.values()) != result.fingerprint


def test_output_folder_outside_the_data_root_is_refused(root: DataRoot, tmp_path: Path) -> None:
    with pytest.raises(PathEscapeError):
        build_coco_datasets(label_images(stills=3), boxes([]), ["logo"], FRACTIONS, 0, tmp_path / "out", root)
    assert not (tmp_path / "out").exists()
