"""A brand's label rows and the pools training reads: one row per labelled image × box, back to images and
annotations, and pooled over brands for objects trained on every brand's creatives (face, smile)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from creative_assets.labels.resolve import ANNOTATION_COLUMNS, LABEL_IMAGE_COLUMNS

BOX_COLUMNS = [c for c in ANNOTATION_COLUMNS if c not in LABEL_IMAGE_COLUMNS]


def join_label_rows(images: pd.DataFrame, annotations: pd.DataFrame) -> pd.DataFrame:
    """One row per labelled image × box; an image without boxes (a negative) appears once with no category."""
    boxes = annotations[["image_path", *BOX_COLUMNS]]
    return images.merge(boxes, on="image_path", how="left", sort=False)


def split_label_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Inverse of join_label_rows: (images, annotations)."""
    images = rows[LABEL_IMAGE_COLUMNS].drop_duplicates("image_path").reset_index(drop=True)
    boxes = rows[rows["category"].notna()]
    annotations = boxes[list(ANNOTATION_COLUMNS)].reset_index(drop=True)
    return images, annotations


def pool_label_rows(
    labels_by_brand: Mapping[str, pd.DataFrame] | pd.DataFrame, brand: str, pooled: bool
) -> pd.DataFrame:
    """The label rows an object of `brand` trains on: every brand's (in brand order) when the object is
    pooled, else the brand's own; a single table counts as `brand`'s. Empty, with the columns, when none."""
    if isinstance(labels_by_brand, pd.DataFrame):
        labels_by_brand = {brand: labels_by_brand}
    if pooled:
        frames = [df for _, df in sorted(labels_by_brand.items()) if len(df)]
    else:
        frames = [labels_by_brand[brand]] if brand in labels_by_brand else []
    if not frames:
        return pd.DataFrame(columns=[*LABEL_IMAGE_COLUMNS, *BOX_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def object_labels(
    labels_by_brand: Mapping[str, pd.DataFrame] | pd.DataFrame,
    brand: str,
    pooled: bool,
    categories: list[str] | tuple[str, ...],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(images, annotations) of one brand × object: the pool's labelled images, negatives included, and only
    the boxes of the object's categories."""
    images, annotations = split_label_rows(pool_label_rows(labels_by_brand, brand, pooled))
    return images, annotations[annotations["category"].isin(list(categories))]
