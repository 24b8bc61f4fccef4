"""Reference resolution against the manifest and frames tables, and build_label_set on real label files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from creative_assets.labels.resolve import (
    ANNOTATION_COLUMNS,
    ANNOTATION_DTYPES,
    ESCAPES_ROOT,
    LABEL_ERROR_COLUMNS,
    LABEL_IMAGE_COLUMNS,
    LABEL_IMAGE_DTYPES,
    ImageIndex,
    LabelSet,
    UnresolvedReference,
    build_label_set,
)
from creative_assets.layout import DataRoot

BRAND = "acme"
CATEGORIES = ["logo", "product"]


def manifest_table(stills: dict[str, tuple[int, int]], brand: str = BRAND) -> pd.DataFrame:
    """Manifest rows for still images (creative_id → width, height) plus one video, as the manifest has it."""
    rows = [
        {
            "brand": brand,
            "creative_id": cid,
            "media_type": "image",
            "path": f"raw/{brand}/creatives/{cid}",
            "width": w,
            "height": h,
        }
        for cid, (w, h) in stills.items()
    ]
    rows.append(
        {
            "brand": brand,
            "creative_id": "videos/v.mp4",
            "media_type": "video",
            "path": f"raw/{brand}/creatives/videos/v.mp4",
            "width": 320,
            "height": 240,
        }
    )
    return pd.DataFrame(rows).astype({"width": "Int64", "height": "Int64"})


def frames_table(videos: dict[str, list[int]], size: tuple[int, int] = (320, 240)) -> pd.DataFrame:
    rows = [
        {
            "brand": BRAND,
            "creative_id": cid,
            "frame_index": i,
            "timestamp_s": i / 10,
            "path": f"frames/{BRAND}/{cid}/{i:06d}.jpg",
            "width": size[0],
            "height": size[1],
        }
        for cid, indices in videos.items()
        for i in indices
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data")


@pytest.fixture
def manifest() -> pd.DataFrame:
    return manifest_table({"images/a.jpg": (640, 480), "a.jpg": (100, 100), "banners/sub/b.png": (200, 100)})


@pytest.fixture
def frames() -> pd.DataFrame:
    return frames_table({"videos/v.mp4": [0, 10], "videos/w.mp4": [10], "other/v.mp4": [20]})


@pytest.fixture
def index(root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame) -> ImageIndex:
    return ImageIndex(root, BRAND, manifest, frames)


def write_labels(root: DataRoot, name: str, content: object) -> Path:
    folder = root.labels(BRAND)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("\n".join(json.dumps(line) for line in content), encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return path


def coco(images: list[tuple[str, int, int]], boxes: list[tuple[int, str, list[float]]]) -> dict:
    """images: (file_name, width, height); boxes: (image index, category, [x, y, w, h])."""
    names = sorted({category for _, category, _ in boxes} | set(CATEGORIES))
    ids = {name: i + 1 for i, name in enumerate(names)}
    return {
        "images": [
            {"id": i + 1, "file_name": f, "width": w, "height": h} for i, (f, w, h) in enumerate(images)
        ],
        "annotations": [
            {"id": k + 1, "image_id": i + 1, "category_id": ids[c], "bbox": bbox, "iscrowd": 0}
            for k, (i, c, bbox) in enumerate(boxes)
        ],
        "categories": [{"id": ids[n], "name": n} for n in names],
    }


def build(root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame) -> LabelSet:
    return build_label_set(root, BRAND, manifest, frames, CATEGORIES)


def reasons(labels: LabelSet) -> dict[tuple[str, str], str]:
    return {(r.file, r.record): r.reason for r in labels.errors.itertuples(index=False)}


# ------------------------------------------------------------------------------------------ resolution


def test_reference_relative_to_the_data_root_resolves(index: ImageIndex) -> None:
    assert index.resolve("raw/acme/creatives/images/a.jpg").image_path == "raw/acme/creatives/images/a.jpg"
    assert index.resolve("frames/acme/videos/w.mp4/000010.jpg").frame_index == 10


def test_creatives_relative_reference_resolves_although_a_longer_path_shares_its_basename(
    index: ImageIndex,
) -> None:
    assert index.resolve("a.jpg").image_path == "raw/acme/creatives/a.jpg"
    assert index.resolve("images/a.jpg").image_path == "raw/acme/creatives/images/a.jpg"


def test_frame_basename_found_in_two_videos_is_ambiguous(index: ImageIndex) -> None:
    with pytest.raises(UnresolvedReference, match=r"ambiguous: matches 2 images \(frames/acme/videos/v.mp4/"):
        index.resolve("000010.jpg")


def test_extra_leading_folders_are_allowed_and_the_matching_frame_wins(index: ImageIndex) -> None:
    image = index.resolve("somewhere/videos/v.mp4/000010.jpg")
    assert (image.creative_id, image.frame_index) == ("videos/v.mp4", 10)
    assert image.key == "videos/v.mp4/000010.jpg"


def test_a_folder_that_differs_from_the_image_s_is_a_conflict_not_a_match(index: ImageIndex) -> None:
    with pytest.raises(UnresolvedReference, match=r"conflicting folder: somewhere/v.mp4/000010.jpg"):
        index.resolve("somewhere/v.mp4/000010.jpg")


def test_images_old_does_not_attach_to_images(root: DataRoot) -> None:
    only = ImageIndex(root, BRAND, manifest_table({"images/x.jpg": (64, 48)}), frames_table({"v.mp4": [1]}))
    assert only.resolve("store/images/x.jpg").creative_id == "images/x.jpg"
    assert only.resolve("x.jpg").creative_id == "images/x.jpg"
    with pytest.raises(UnresolvedReference, match=r"conflicting folder: images_old/x.jpg .*images/x.jpg"):
        only.resolve("images_old/x.jpg")


def test_suffix_shared_by_two_videos_of_the_same_name_stays_ambiguous(index: ImageIndex) -> None:
    index_with_twin = ImageIndex(
        index.root, BRAND, manifest_table({}), frames_table({"videos/v.mp4": [10], "other/v.mp4": [10]})
    )
    with pytest.raises(UnresolvedReference, match="ambiguous: matches 2 images"):
        index_with_twin.resolve("v.mp4/000010.jpg")


def test_unique_basename_resolves(index: ImageIndex) -> None:
    assert index.resolve("b.png").image_path == "raw/acme/creatives/banners/sub/b.png"
    assert index.resolve("000020.jpg").creative_id == "other/v.mp4"


@pytest.mark.parametrize(
    "reference",
    [
        "AmlDatastore://workspaceblobstore/acme/frames/videos/w.mp4/000010.jpg",
        "azureml://subscriptions/s/resourcegroups/g/workspaces/w/datastores/d/paths/acme/videos/w.mp4/000010.jpg",
        "https://store.blob.core.windows.net/container/acme/videos/w.mp4/000010.jpg?sv=2020&sig=abc",
        "videos%2Fw.mp4/000010.jpg",
        "videos\\w.mp4\\000010.jpg",
    ],
)
def test_azure_and_url_references_resolve_by_suffix(index: ImageIndex, reference: str) -> None:
    assert index.resolve(reference).image_path == "frames/acme/videos/w.mp4/000010.jpg"


def test_url_escapes_are_decoded(root: DataRoot, frames: pd.DataFrame) -> None:
    index = ImageIndex(root, BRAND, manifest_table({"summer sale/a b.jpg": (10, 10)}), frames)
    assert index.resolve("AmlDatastore://s/acme/summer%20sale/a%20b.jpg").creative_id == "summer sale/a b.jpg"


def test_absolute_path_inside_the_data_root_resolves(index: ImageIndex, root: DataRoot) -> None:
    inside = root.root / "raw" / "acme" / "creatives" / "images" / "a.jpg"
    assert index.resolve(str(inside)).creative_id == "images/a.jpg"
    assert index.resolve(inside.as_uri()).creative_id == "images/a.jpg"


@pytest.mark.parametrize(
    "reference",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "images/../../../a.jpg",
        "%2e%2e/%2e%2e/etc/passwd",
        "AmlDatastore://store/../etc/passwd",
        "C:\\Windows\\win.ini",
    ],
)
def test_reference_escaping_the_data_root_is_refused(index: ImageIndex, reference: str) -> None:
    with pytest.raises(UnresolvedReference, match=ESCAPES_ROOT):
        index.resolve(reference)


def test_unknown_image_is_an_error_that_mentions_frame_extraction(index: ImageIndex) -> None:
    with pytest.raises(
        UnresolvedReference, match=r"no such image in brand acme \(frames must be extracted first\)"
    ):
        index.resolve("videos/v.mp4/000030.jpg")


def test_videos_and_other_brands_are_not_label_targets(root: DataRoot, frames: pd.DataFrame) -> None:
    tables = pd.concat([manifest_table({}), manifest_table({"x.jpg": (5, 5)}, brand="globex")])
    index = ImageIndex(root, BRAND, tables, frames)
    for reference in ("videos/v.mp4", "x.jpg"):
        with pytest.raises(UnresolvedReference, match="no such image"):
            index.resolve(reference)


# ------------------------------------------------------------------------------------------ label set


def test_normalised_boxes_are_scaled_with_the_actual_image_size(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    # The stated 1000px size is wrong, but normalised boxes do not depend on it.
    box = {"label": "logo", "topX": 0.25, "topY": 0.5, "bottomX": 0.75, "bottomY": 1.0}
    line = {
        "image_url": "videos/v.mp4/000010.jpg",
        "image_details": {"width": "1000px", "height": "1000px"},
        "label": [box],
    }
    write_labels(root, "a.jsonl", [line])
    labels = build(root, manifest, frames)
    assert labels.errors.empty
    assert labels.annotations[["x_min", "y_min", "x_max", "y_max"]].iloc[0].tolist() == [
        80.0,
        120.0,
        240.0,
        240.0,
    ]
    assert labels.images[["image_path", "creative_id", "frame_index", "width", "height"]].iloc[
        0
    ].tolist() == [
        "frames/acme/videos/v.mp4/000010.jpg",
        "videos/v.mp4",
        10,
        320,
        240,
    ]


def test_pixel_boxes_from_a_label_with_the_wrong_size_skip_the_image(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(
        root,
        "l.json",
        coco(
            [("images/a.jpg", 1280, 960), ("b.png", 200, 100)],
            [(0, "logo", [10, 10, 20, 20]), (1, "logo", [1, 1, 5, 5])],
        ),
    )
    labels = build(root, manifest, frames)
    assert labels.images["creative_id"].tolist() == ["banners/sub/b.png"]
    reason = reasons(labels)[("raw/acme/labels/l.json", "images[0]")]
    assert "label size 1280x960 differs from the image's actual size 640x480" in reason


def test_box_partly_outside_the_image_is_clipped_and_kept(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(root, "l.json", coco([("images/a.jpg", 640, 480)], [(0, "logo", [600, -10, 100, 50])]))
    labels = build(root, manifest, frames)
    assert labels.errors.empty
    assert labels.annotations[["x_min", "y_min", "x_max", "y_max"]].iloc[0].tolist() == [
        600.0,
        0.0,
        640.0,
        40.0,
    ]


def test_box_outside_the_image_or_without_area_leaves_the_whole_image_out(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(
        root,
        "l.json",
        coco(
            [("images/a.jpg", 640, 480)],
            [(0, "logo", [700, 10, 20, 20]), (0, "logo", [10, 10, 0, 20]), (0, "product", [10, 10, 5, 5])],
        ),
    )
    labels = build(root, manifest, frames)
    errors = reasons(labels)
    assert (
        "lies outside the 640x480 image or has no area"
        in errors[("raw/acme/labels/l.json", "annotations[0]")]
    )
    assert "has no area" in errors[("raw/acme/labels/l.json", "annotations[1]")]
    assert "a.jpg is left out of the datasets" in errors[("raw/acme/labels/l.json", "annotations[1]")]
    # the valid product box does not keep the image: it would be a false negative for logo
    assert labels.annotations.empty and labels.images.empty


def test_an_image_whose_only_box_is_rejected_is_not_a_negative(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(root, "l.json", coco([("images/a.jpg", 640, 480)], [(0, "logo", [0, 0, 0, 0])]))
    labels = build(root, manifest, frames)
    assert labels.images.empty and labels.annotations.empty
    assert "box logo (0, 0, 0, 0)" in reasons(labels)[("raw/acme/labels/l.json", "annotations[0]")]


def test_unknown_category_is_an_error_and_only_that_box_is_dropped(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(
        root, "l.json", coco([("a.jpg", 100, 100)], [(0, "Logo", [1, 1, 5, 5]), (0, "logo", [2, 2, 5, 5])])
    )
    labels = build(root, manifest, frames)
    assert labels.annotations["record"].tolist() == ["annotations[1]"]
    reason = reasons(labels)[("raw/acme/labels/l.json", "annotations[0]")]
    assert reason.startswith("unknown category 'Logo' (known: logo, product)")


def test_crowd_box_is_skipped_with_a_note(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    box = {"label": "logo", "topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5, "isCrowd": True}
    write_labels(root, "l.jsonl", [{"image_url": "a.jpg", "label": [box]}])
    labels = build(root, manifest, frames)
    assert labels.annotations.empty
    assert reasons(labels)[("raw/acme/labels/l.jsonl", "line 1 label[0]")].startswith(
        "note: crowd box skipped"
    )


def test_image_without_boxes_stays_as_a_negative(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(root, "l.jsonl", [{"image_url": "videos/w.mp4/000010.jpg", "label": []}])
    labels = build(root, manifest, frames)
    assert labels.images["image_path"].tolist() == ["frames/acme/videos/w.mp4/000010.jpg"]
    assert labels.annotations.empty
    assert labels.errors.empty


def test_image_labelled_differently_in_a_second_file_is_an_error_there(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(root, "1.json", coco([("a.jpg", 100, 100)], [(0, "logo", [10, 10, 20, 20])]))
    write_labels(root, "2.json", coco([("a.jpg", 100, 100)], [(0, "logo", [50, 50, 20, 20])]))
    labels = build(root, manifest, frames)
    assert labels.annotations["source_file"].tolist() == ["raw/acme/labels/1.json"]
    reason = reasons(labels)[("raw/acme/labels/2.json", "images[0]")]
    assert "already labelled differently by raw/acme/labels/1.json images[0]" in reason


def test_same_labels_exported_in_two_formats_are_not_an_error(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(root, "1.json", coco([("banners/sub/b.png", 200, 100)], [(0, "logo", [20, 10, 40, 20])]))
    box = {"label": "logo", "topX": 0.1, "topY": 0.1, "bottomX": 0.3, "bottomY": 0.3}
    write_labels(root, "2.jsonl", [{"image_url": "AmlDatastore://s/acme/banners/sub/b.png", "label": [box]}])
    labels = build(root, manifest, frames)
    assert labels.errors.empty
    assert len(labels.images) == 1
    assert len(labels.annotations) == 1


def test_hostile_records_are_errors_and_the_good_records_of_the_file_import(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    good = {"label": "logo", "topX": 0.1, "topY": 0.1, "bottomX": 0.5, "bottomY": 0.5}
    folder = root.labels(BRAND)
    folder.mkdir(parents=True)
    lines = [
        json.dumps({"image_url": "../../etc/passwd", "label": [good]}),
        json.dumps({"image_url": "/etc/passwd", "label": []}),
        json.dumps({"image_url": "a.jpg", "label": [{**good, "topX": 1e308}]}),
        '{"image_url": "a.jpg", "label": [{"label": "logo", "topX": NaN, "topY": 0, "bottomX": 1, "bottomY": 1}]}',
        json.dumps({"image_url": "000010.jpg", "label": []}),
        json.dumps({"image_url": "gone.jpg", "label": []}),
        '{"image_url": "images/a.jpg", "lab',
        json.dumps({"image_url": "images/a.jpg", "label": [good]}),
    ]
    (folder / "l.jsonl").write_text("\n".join(lines), encoding="utf-8")
    labels = build(root, manifest, frames)
    errors = reasons(labels)
    file = "raw/acme/labels/l.jsonl"
    assert errors[(file, "line 1")].startswith(ESCAPES_ROOT)
    assert errors[(file, "line 2")].startswith(ESCAPES_ROOT)
    assert "out of range" in errors[(file, "line 3")]
    assert "must be a finite number" in errors[(file, "line 4")]
    assert errors[(file, "line 5")].startswith("ambiguous: matches 2 images")
    assert errors[(file, "line 6")].startswith("no such image in brand acme")
    assert errors[(file, "line 7")].startswith("not valid JSON")
    assert len(errors) == 7
    assert labels.images["image_path"].tolist() == ["raw/acme/creatives/images/a.jpg"]
    assert labels.annotations[["x_min", "x_max"]].iloc[0].tolist() == [64.0, 320.0]


def test_label_file_linked_from_outside_the_data_root_is_not_read(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(coco([("a.jpg", 100, 100)], [])), encoding="utf-8")
    root.labels(BRAND).mkdir(parents=True)
    os.symlink(outside, root.labels(BRAND) / "link.json")
    labels = build(root, manifest, frames)
    assert labels.images.empty
    assert reasons(labels)[("raw/acme/labels/link.json", "")].startswith(ESCAPES_ROOT)


def test_tables_have_the_documented_columns_and_dtypes(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    write_labels(root, "l.json", coco([("a.jpg", 100, 100), ("gone.jpg", 1, 1)], [(0, "logo", [1, 1, 5, 5])]))
    labels = build(root, manifest, frames)
    assert list(labels.images.columns) == LABEL_IMAGE_COLUMNS
    assert list(labels.annotations.columns) == ANNOTATION_COLUMNS
    assert list(labels.errors.columns) == LABEL_ERROR_COLUMNS
    assert {c: str(t) for c, t in labels.images.dtypes.items()} == LABEL_IMAGE_DTYPES | {"brand": "string"}
    assert {c: str(t) for c, t in labels.annotations.dtypes.items()} == ANNOTATION_DTYPES
    assert (labels.errors.dtypes == "string").all()
    assert labels.errors["stage"].tolist() == ["labels"]
    assert labels.images["frame_index"].isna().all()


def test_brand_without_labels_gives_empty_tables(
    root: DataRoot, manifest: pd.DataFrame, frames: pd.DataFrame
) -> None:
    labels = build(root, manifest, frames)
    assert labels.images.empty and labels.annotations.empty and labels.errors.empty
    assert list(labels.images.columns) == LABEL_IMAGE_COLUMNS
