"""Deterministic train/valid/test COCO datasets from validated label tables.

The split is grouped by source creative — every frame of one video lands in the same split — so frames that
look alike never sit on both sides of an evaluation. Each group `(brand, creative_id)` is placed by its own
hash, `sha256(f"{seed}:{brand}/{creative_id}")` read as a number in [0, 1) and bucketed by the fractions; a
group's split therefore does not move when unrelated images are added. Small datasets then get two repairs,
each moving the fewest groups, taking the group whose hash lies nearest the receiving split's interval:

1. positives: with P groups holding a box of the object's categories, the first min(P, 3) of train, valid,
   test (in that order) each get one. Fallback: with two positive groups test has none (its presence metrics
   see only negatives); with one, only train has it.
2. non-empty: with at least three groups, no split is left empty. A group is never moved if it is the only
   one of its split or the only positive of a split that needs one; negatives move before positives.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from creative_assets.atomic import atomic_write_text
from creative_assets.layout import DataRoot

SPLITS = ("train", "valid", "test")
SPLIT_TABLE_BASE_COLUMNS = ["split", "json_path", "images", "positive_images", "annotations"]
CLASS_BALANCE_COLUMNS = ["split", "category", "category_id", "positive_images", "negative_images", "boxes"]
_COORDINATE_DECIMALS = 3


DATASET_COLUMNS = [
    "split", "json_path", "images", "positive_images", "annotations", "by_category", "fingerprint",
]  # fmt: skip
# Per-category counts as one JSON string column (`[{"category", "positive_images", "boxes"}, …]`), so every
# brand × object partition has the same schema whatever its categories: one Parquet dataset for every reader,
# no per-object `n_<category>` columns (DuckDB: `from_json`/`json_extract`; polars: `str.json_decode`).
DATASET_DTYPES = dict.fromkeys(DATASET_COLUMNS, "string") | dict.fromkeys(
    ["images", "positive_images", "annotations"], "int64"
)


def group_position(seed: int, brand: str, creative_id: str) -> float:
    """The group's hash position in [0, 1): where it falls decides its split."""
    digest = hashlib.sha256(f"{seed}:{brand}/{creative_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_images(
    images: pd.DataFrame,
    fractions: tuple[float, float, float],
    seed: int,
    positive: pd.Series | None = None,
) -> pd.Series:
    """The split (train, valid or test) of each row of `images`, grouped by (brand, creative_id)."""
    bounds = _bounds(fractions)
    keys = list(zip(images["brand"].astype(str), images["creative_id"].astype(str), strict=True))
    groups = sorted(set(keys))
    position = {g: group_position(seed, *g) for g in groups}
    split = {g: SPLITS[sum(position[g] >= b for b in bounds[1:3])] for g in groups}
    positive_groups: set[tuple[str, str]] = set()
    if positive is not None:
        if not isinstance(positive, pd.Series):
            positive = pd.Series(positive, index=images.index)
        flags = positive.reindex(images.index, fill_value=False).astype(bool)
        positive_groups = {k for k, flag in zip(keys, flags, strict=True) if flag}
    size = Counter(split.values())
    positives = Counter(split[g] for g in positive_groups)
    need_positive = SPLITS[: min(len(positive_groups), len(SPLITS))]

    def movable(g: tuple[str, str]) -> bool:
        home = split[g]
        if size[home] < 2:
            return False
        return not (g in positive_groups and home in need_positive and positives[home] < 2)

    def distance(g: tuple[str, str], s: str) -> float:
        lower, upper = bounds[SPLITS.index(s)], bounds[SPLITS.index(s) + 1]
        return max(lower - position[g], position[g] - upper, 0.0)

    def move(g: tuple[str, str], s: str) -> None:
        size[split[g]] -= 1
        size[s] += 1
        if g in positive_groups:
            positives[split[g]] -= 1
            positives[s] += 1
        split[g] = s

    for s in need_positive:
        if positives[s] == 0:
            donors = [g for g in sorted(positive_groups) if split[g] != s and movable(g)]
            if donors:
                move(min(donors, key=lambda g: (distance(g, s), g)), s)
    if len(groups) >= len(SPLITS):
        for s in SPLITS:
            if size[s] == 0:
                donors = [g for g in groups if split[g] != s and movable(g)]
                if donors:
                    move(min(donors, key=lambda g: (g in positive_groups, distance(g, s), g)), s)
    return pd.Series([split[k] for k in keys], index=images.index, dtype="string", name="split")


def _bounds(fractions: Sequence[float]) -> list[float]:
    if len(fractions) != 3 or any(not 0 <= f <= 1 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three numbers in [0, 1] summing to 1, not {tuple(fractions)}")
    train, valid, _ = fractions
    return [0.0, train, train + valid, 1.0]


@dataclass
class CocoDatasets:
    """The written splits: a summary table, detectron2-style metadata, per-class balance and the files."""

    table: pd.DataFrame
    metadata: dict[str, Any]
    class_balance: pd.DataFrame
    paths: dict[str, Path]
    fingerprint: str


def build_coco_datasets(
    images: pd.DataFrame,
    annotations: pd.DataFrame,
    categories: list[str],
    fractions: tuple[float, float, float],
    seed: int,
    out_dir: Path,
    root: DataRoot,
) -> CocoDatasets:
    """Split the labelled images and write `out_dir/{train,valid,test}.json` (COCO, paths from the data root)."""
    if len(set(categories)) != len(categories) or not categories:
        raise ValueError(f"categories must be a non-empty list without repeats, not {categories}")
    if images["image_path"].duplicated().any():
        raise ValueError("images lists an image_path twice; label sets must hold each image once")
    category_id = {name: i + 1 for i, name in enumerate(categories)}
    kept = annotations[annotations["category"].isin(categories)]
    unknown = set(kept["image_path"]) - set(images["image_path"])
    if unknown:
        raise ValueError(f"annotations name images not in the images table: {sorted(unknown)[:5]}")

    positive = images["image_path"].isin(set(kept["image_path"]))
    split = split_images(images, fractions, seed, positive=positive)
    paths = {s: Path(out_dir) / f"{s}.json" for s in SPLITS}
    relative = {s: root.relative(p) for s, p in paths.items()}  # refuses an out_dir outside the root

    boxes_by_image: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for box in kept.itertuples(index=False):
        x, y = round(float(box.x_min), _COORDINATE_DECIMALS), round(float(box.y_min), _COORDINATE_DECIMALS)
        w = round(float(box.x_max) - float(box.x_min), _COORDINATE_DECIMALS)
        h = round(float(box.y_max) - float(box.y_min), _COORDINATE_DECIMALS)
        boxes_by_image.setdefault(str(box.image_path), []).append((category_id[box.category], x, y, w, h))

    rows, balance = [], []
    for s in SPLITS:
        members = images[(split == s).to_numpy(dtype=bool)].sort_values("image_path", kind="stable")
        doc = _coco_document(members, boxes_by_image, categories, category_id, s)
        # Compact, in construction order: the C encoder is ~10x faster than indented output on large splits.
        atomic_write_text(paths[s], json.dumps(doc, separators=(",", ":"), allow_nan=False))
        # Counted from the document as written, so the table cannot disagree with the file.
        anns = doc["annotations"]
        row = {
            "split": s,
            "json_path": relative[s],
            "images": len(doc["images"]),
            "positive_images": len({a["image_id"] for a in anns}),
            "annotations": len(anns),
        }
        for name in categories:
            of_class = [a for a in anns if a["category_id"] == category_id[name]]
            row[f"n_{name}"] = len(of_class)
            with_class = len({a["image_id"] for a in of_class})
            balance.append(
                {
                    "split": s,
                    "category": name,
                    "category_id": category_id[name],
                    "positive_images": with_class,
                    "negative_images": len(doc["images"]) - with_class,
                    "boxes": len(of_class),
                }
            )
        rows.append(row)

    table = pd.DataFrame(rows, columns=SPLIT_TABLE_BASE_COLUMNS + [f"n_{c}" for c in categories])
    table = table.astype(
        {"split": "string", "json_path": "string"} | dict.fromkeys(table.columns[2:], "int64")
    )
    class_balance = pd.DataFrame(balance, columns=CLASS_BALANCE_COLUMNS).astype(
        {"split": "string", "category": "string"} | dict.fromkeys(CLASS_BALANCE_COLUMNS[2:], "int64")
    )
    metadata = {
        "thing_classes": list(categories),
        "thing_dataset_id_to_contiguous_id": {category_id[c]: category_id[c] - 1 for c in categories},
    }
    return CocoDatasets(table, metadata, class_balance, paths, dataset_fingerprint(paths.values()))


def _coco_document(
    members: pd.DataFrame,
    boxes_by_image: dict[str, list[tuple[int, float, float, float, float]]],
    categories: list[str],
    category_id: dict[str, int],
    split: str,
) -> dict[str, Any]:
    coco_images, coco_annotations = [], []
    for image_id, image in enumerate(members.itertuples(index=False), start=1):
        frame_index = None if pd.isna(image.frame_index) else int(image.frame_index)
        coco_images.append(
            {
                "id": image_id,
                "file_name": str(image.image_path),
                "width": int(image.width),
                "height": int(image.height),
                "brand": str(image.brand),
                "creative_id": str(image.creative_id),
                "frame_index": frame_index,
            }
        )
        # Sorted so that the ids do not depend on the order the annotations table arrived in.
        for cat, x, y, w, h in sorted(boxes_by_image.get(str(image.image_path), ())):
            coco_annotations.append(
                {
                    "id": len(coco_annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat,
                    "bbox": [x, y, w, h],
                    "area": round(w * h, _COORDINATE_DECIMALS),
                    "iscrowd": 0,
                }
            )
    return {
        "info": {"description": f"creative_assets {split} split", "version": "1"},
        "licenses": [],
        "images": coco_images,
        "annotations": coco_annotations,
        "categories": [{"id": category_id[c], "name": c, "supercategory": "object"} for c in categories],
    }


def dataset_fingerprint(paths: Iterable[Path]) -> str:
    """sha256 over the split files' names and bytes, in name order (for lineage)."""
    digest = hashlib.sha256()
    for path in sorted((Path(p) for p in paths), key=lambda p: p.name):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def dataset_table(splits: pd.DataFrame, class_balance: pd.DataFrame, fingerprint: str) -> pd.DataFrame:
    """The coco_datasets table in its fixed schema: one row per split, per-category counts as JSON in
    `by_category`."""
    by_split = {
        split: [
            {"category": str(r.category), "positive_images": int(r.positive_images), "boxes": int(r.boxes)}
            for r in group.itertuples(index=False)
        ]
        for split, group in class_balance.groupby("split", sort=False)
    }
    table = splits[["split", "json_path", "images", "positive_images", "annotations"]].copy()
    table["by_category"] = [json.dumps(by_split.get(s, []), separators=(",", ":")) for s in table["split"]]
    table["fingerprint"] = fingerprint
    return table[DATASET_COLUMNS].astype(DATASET_DTYPES)
