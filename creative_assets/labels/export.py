"""A labelling task for the tools teams use, written from a labelling queue under `exports/<b>/<o>/<date>/`.

The task folder holds:
- the queued images, copied under their data-root paths (`raw/<brand>/creatives/…` for stills,
  `frames/<brand>/<creative_id>/<frame:06d>.jpg` for frames). Every name in the task is therefore the image's
  path under the data root, which the label importers resolve exactly when the labelled file comes back;
- `tasks_coco.json`: COCO with the model's boxes (score ≥ the class threshold) as pre-annotations, pixel
  `[x, y, w, h]` boxes, `file_name` relative to the task folder — for CVAT (COCO 1.0 import) and Label Studio
  (`label-studio-converter import coco`);
- `tasks_azureml.jsonl`: Azure ML Data Labeling / AutoML object-detection JSONL, one image a line, boxes
  normalised to 0–1, `image_url` = `<datastore_root>/<brand>/<object>/<date>/<image path>` — the URL the image
  has once the data root's `exports/` folder is uploaded to the datastore folder `datastore_root`.

Labels are exhaustive per image (an image without a box of a class is a negative for it), so the task lists
every category of every object and pre-annotates what all of the brand's models find, not only the queued
object: a labeller who labels the task completely hands back images that are right for every model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import pandas as pd

from creative_assets.atomic import atomic_path, atomic_write_text
from creative_assets.labels.importers import load_label_file
from creative_assets.labels.queue import frame_keys
from creative_assets.labels.resolve import ImageIndex, UnresolvedReference
from creative_assets.layout import DataRoot

COCO_FILE = "tasks_coco.json"
AZURE_JSONL_FILE = "tasks_azureml.jsonl"
README_FILE = "README.txt"
_DECIMALS = 2
_NORMALISED_DECIMALS = 6


@dataclass(frozen=True)
class LabellingTask:
    """One exported task: its folder and files, with counts for metadata."""

    folder: Path
    coco_path: Path
    jsonl_path: Path
    images: int
    pre_annotations: int


def pre_annotations(queue: pd.DataFrame, detections: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """The brand's above-threshold detections (every object) on the queued images, clipped to each image."""
    columns = ["image_path", "class_name", "score", "x_min", "y_min", "x_max", "y_max"]
    if not len(queue) or not len(detections):
        return pd.DataFrame(columns=columns)
    dets = detections[detections["above_threshold"].astype(bool) & detections["class_name"].isin(categories)]
    keys = queue[["creative_id", "frame_index", "image_path", "width", "height"]].copy()
    dets = dets.assign(_frame=frame_keys(dets["frame_index"]))
    keys = keys.assign(_frame=frame_keys(keys["frame_index"]))
    dets = dets.assign(creative_id=dets["creative_id"].astype(str))
    keys = keys.assign(creative_id=keys["creative_id"].astype(str))
    boxes = dets.drop(columns=["frame_index"]).merge(
        keys.drop(columns=["frame_index"]), on=["creative_id", "_frame"], how="inner"
    )
    for lo, hi, size in (("x_min", "x_max", "width"), ("y_min", "y_max", "height")):
        boxes[lo] = boxes[lo].clip(lower=0.0, upper=boxes[size].astype(float))
        boxes[hi] = boxes[hi].clip(lower=0.0, upper=boxes[size].astype(float))
    boxes = boxes[(boxes["x_max"] > boxes["x_min"]) & (boxes["y_max"] > boxes["y_min"])]
    boxes = boxes.sort_values(["image_path", "score"], ascending=[True, False], kind="mergesort")
    return boxes[columns].reset_index(drop=True)


def coco_document(
    queue: pd.DataFrame, boxes: pd.DataFrame, categories: Sequence[str], description: str
) -> dict:
    """The COCO task: images in queue order (ids from 1), pre-annotations, every category."""
    category_id = {name: i + 1 for i, name in enumerate(categories)}
    images, annotations = [], []
    by_image = {str(k): g for k, g in boxes.groupby("image_path", sort=False)}
    for image_id, row in enumerate(queue.itertuples(index=False), start=1):
        images.append(
            {
                "id": image_id,
                "file_name": str(row.image_path),
                "width": int(row.width),
                "height": int(row.height),
                "creative_id": str(row.creative_id),
                "frame_index": None if pd.isna(row.frame_index) else int(row.frame_index),
                "rank": int(row.rank),
            }
        )
        group = by_image.get(str(row.image_path))
        if group is None:
            continue
        for box in group.itertuples(index=False):
            x, y = round(float(box.x_min), _DECIMALS), round(float(box.y_min), _DECIMALS)
            w = round(float(box.x_max) - float(box.x_min), _DECIMALS)
            h = round(float(box.y_max) - float(box.y_min), _DECIMALS)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id[str(box.class_name)],
                    "bbox": [x, y, w, h],
                    "area": round(w * h, _DECIMALS),
                    "iscrowd": 0,
                    "score": round(float(box.score), 4),
                }
            )
    return {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "categories": [{"id": i, "name": n, "supercategory": "brand_object"} for n, i in category_id.items()],
        "images": images,
        "annotations": annotations,
    }


def image_url(datastore_root: str, task_prefix: str, image_path: str) -> str:
    """`<datastore_root>/<task_prefix>/<image path>`, the path percent-encoded (`?`, `#`, spaces survive)."""
    return f"{datastore_root.rstrip('/')}/{quote(f'{task_prefix}/{image_path}', safe='/')}"


def azure_jsonl(queue: pd.DataFrame, boxes: pd.DataFrame, datastore_root: str, task_prefix: str) -> str:
    """Azure ML object-detection JSONL: one image a line, normalised boxes as pre-annotations."""
    by_image = {str(k): g for k, g in boxes.groupby("image_path", sort=False)}
    lines = []
    for row in queue.itertuples(index=False):
        width, height = int(row.width), int(row.height)
        labels = []
        group = by_image.get(str(row.image_path))
        for box in group.itertuples(index=False) if group is not None else []:
            labels.append(
                {
                    "label": str(box.class_name),
                    "topX": round(float(box.x_min) / width, _NORMALISED_DECIMALS),
                    "topY": round(float(box.y_min) / height, _NORMALISED_DECIMALS),
                    "bottomX": round(float(box.x_max) / width, _NORMALISED_DECIMALS),
                    "bottomY": round(float(box.y_max) / height, _NORMALISED_DECIMALS),
                    "isCrowd": 0,
                }
            )
        suffix = PurePosixPath(str(row.image_path)).suffix.lstrip(".").lower() or "jpg"
        line = {
            "image_url": image_url(datastore_root, task_prefix, str(row.image_path)),
            "image_details": {"format": suffix, "width": f"{width}px", "height": f"{height}px"},
            "label": labels,
        }
        lines.append(json.dumps(line))
    return "".join(line + "\n" for line in lines)


def _readme(brand: str, object_name: str, images: int, categories: Sequence[str]) -> str:
    return (
        f"Labelling task: {images} images of brand {brand}, queued for the {object_name} model.\n"
        f"Label EVERY category on every image ({', '.join(categories)}): an image without a box of a\n"
        "category is taken as a negative for it. The boxes already drawn are the models' guesses.\n\n"
        f"CVAT: create a task from this folder's images, then Upload annotations > COCO 1.0 > {COCO_FILE}.\n"
        f"Label Studio: label-studio-converter import coco -i {COCO_FILE} -o tasks.json, then import it.\n"
        f"Azure ML Data Labeling: upload this folder under the datastore root, import {AZURE_JSONL_FILE}.\n\n"
        f"Drop the exported labels (COCO json or Azure ML JSONL) into raw/{brand}/labels/, then run\n"
        f"creative-assets retrain --brand {brand} --object {object_name}\n"
    )


def _copy_images(root: DataRoot, folder: Path, image_paths: Sequence[str]) -> set[Path]:
    written = set()
    for rel in image_paths:
        source = root.resolve_inside(rel)
        target = folder / rel
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        written.add(target)
    return written


def _remove_stale_images(folder: Path, keep: set[Path]) -> int:
    """Images an earlier export of the same day queued and this one does not (the folder is derived)."""
    removed = 0
    for top in ("raw", "frames"):
        base = folder / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*"), reverse=True):
            if path.is_file() and path not in keep:
                path.unlink()
                removed += 1
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return removed


def export_task(
    root: DataRoot,
    brand: str,
    object_name: str,
    queue: pd.DataFrame,
    detections: pd.DataFrame,
    categories: Sequence[str],
    day: str,
    datastore_root: str,
) -> LabellingTask:
    """Write the task for `queue` under `exports/<brand>/<object>/<day>/` (replacing one of the same day)."""
    folder = root.exports(brand, object_name, day)
    boxes = pre_annotations(queue, detections, categories)
    keep = _copy_images(root, folder, [str(p) for p in queue["image_path"]])
    _remove_stale_images(folder, keep)
    coco = coco_document(queue, boxes, categories, f"labelling task {brand}|{object_name} {day}")
    coco_path, jsonl_path = folder / COCO_FILE, folder / AZURE_JSONL_FILE
    atomic_write_text(coco_path, json.dumps(coco, indent=1))
    prefix = PurePosixPath(brand, object_name, day).as_posix()
    atomic_write_text(jsonl_path, azure_jsonl(queue, boxes, datastore_root, prefix))
    atomic_write_text(folder / README_FILE, _readme(brand, object_name, len(queue), categories))
    return LabellingTask(folder, coco_path, jsonl_path, images=len(queue), pre_annotations=len(boxes))


def validate_task(
    root: DataRoot,
    brand: str,
    task: LabellingTask,
    queue: pd.DataFrame,
    manifest: pd.DataFrame,
    frames: pd.DataFrame,
) -> list[str]:
    """Problems with an exported task: pycocotools must load the COCO file, our importers must read both files
    without an error and with every box, and every image must resolve to its queued creative and frame."""
    from pycocotools.coco import COCO

    problems: list[str] = []
    coco = json.loads(task.coco_path.read_text(encoding="utf-8"))
    api = COCO()
    api.dataset = coco
    api.createIndex()
    if len(api.getImgIds()) != len(queue):
        problems.append(f"pycocotools sees {len(api.getImgIds())} images, the queue has {len(queue)}")
    if len(api.getAnnIds()) != task.pre_annotations:
        problems.append(f"pycocotools sees {len(api.getAnnIds())} boxes, {task.pre_annotations} were written")
    missing = [im["file_name"] for im in coco["images"] if not (task.folder / im["file_name"]).is_file()]
    if missing:
        problems.append(f"{len(missing)} images missing from the task folder (e.g. {missing[0]})")
    expected = {
        str(r.image_path): (str(r.creative_id), None if pd.isna(r.frame_index) else int(r.frame_index))
        for r in queue.itertuples(index=False)
    }
    index = ImageIndex(root, brand, manifest, frames)
    for path in (task.coco_path, task.jsonl_path):
        parsed = load_label_file(path)
        problems += [f"{path.name} {e.record}: {e.reason}" for e in parsed.errors]
        if len(parsed.images) != len(queue):
            problems.append(f"{path.name}: the importer reads {len(parsed.images)} images of {len(queue)}")
        boxes = sum(len(im.boxes) for im in parsed.images)
        if boxes != task.pre_annotations:
            problems.append(f"{path.name}: the importer reads {boxes} boxes of {task.pre_annotations}")
        for image in parsed.images:
            try:
                known = index.resolve(image.reference)
            except UnresolvedReference as err:
                problems.append(f"{path.name} {image.record}: {err}")
                continue
            if expected.get(known.image_path) != (known.creative_id, known.frame_index):
                problems.append(
                    f"{path.name} {image.record}: resolves to {known.image_path}, not a queued image"
                )
    return problems
