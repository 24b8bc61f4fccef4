"""Label rows: image × box join and its inverse, and the brand pools face and smile train on."""

from __future__ import annotations

import pandas as pd

from creative_assets.labels.pooling import join_label_rows, object_labels, pool_label_rows, split_label_rows
from creative_assets.labels.resolve import ANNOTATION_COLUMNS, ANNOTATION_DTYPES, LABEL_IMAGE_DTYPES


def brand_labels(brand: str, boxes: dict[str, list[str]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images `<brand>/<name>.jpg` with the given categories (an empty list is a negative image)."""
    images = pd.DataFrame(
        [
            {
                "brand": brand,
                "image_path": f"raw/{brand}/{name}.jpg",
                "creative_id": f"{name}.jpg",
                "frame_index": pd.NA,
                "width": 64,
                "height": 48,
                "source_file": "labels.json",
            }
            for name in boxes
        ]
    ).astype(LABEL_IMAGE_DTYPES)
    annotations = pd.DataFrame(
        [
            {
                "brand": brand,
                "image_path": f"raw/{brand}/{name}.jpg",
                "category": category,
                "x_min": 1.0 + i,
                "y_min": 2.0,
                "x_max": 10.0 + i,
                "y_max": 12.0,
                "source_file": "labels.json",
                "record": f"annotations[{i}]",
            }
            for name, categories in boxes.items()
            for i, category in enumerate(categories)
        ],
        columns=ANNOTATION_COLUMNS,
    ).astype(ANNOTATION_DTYPES)
    return images, annotations


def test_joined_rows_keep_negatives_once_and_split_back_to_the_same_tables():
    images, annotations = brand_labels("acme", {"a": ["logo", "face"], "b": [], "c": ["smile"]})
    rows = join_label_rows(images, annotations)
    assert len(rows) == 4  # a twice, b once with no category, c once
    assert rows.loc[rows["image_path"] == "raw/acme/b.jpg", "category"].isna().all()
    back_images, back_annotations = split_label_rows(rows)
    pd.testing.assert_frame_equal(back_images, images)
    pd.testing.assert_frame_equal(back_annotations, annotations)


def test_a_pooled_object_trains_on_every_brand_and_a_brand_object_on_its_own():
    acme = join_label_rows(*brand_labels("acme", {"a": ["face"], "b": ["logo"]}))
    globex = join_label_rows(*brand_labels("globex", {"g": ["face"]}))
    by_brand = {"globex": globex, "acme": acme}
    pooled = pool_label_rows(by_brand, "globex", pooled=True)
    assert pooled["brand"].tolist() == ["acme", "acme", "globex"]  # brand order, whoever asks
    assert pool_label_rows(by_brand, "globex", pooled=False)["brand"].tolist() == ["globex"]
    assert pool_label_rows(by_brand, "initech", pooled=False).empty


def test_object_labels_keep_every_image_but_only_the_objects_boxes():
    rows = join_label_rows(*brand_labels("acme", {"a": ["logo", "face"], "b": ["face"], "c": []}))
    images, annotations = object_labels(rows, "acme", pooled=False, categories=("logo",))
    assert images["creative_id"].tolist() == ["a.jpg", "b.jpg", "c.jpg"]  # b and c are negatives for logo
    assert annotations["category"].tolist() == ["logo"]
