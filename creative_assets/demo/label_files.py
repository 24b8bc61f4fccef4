"""Label files of the synthetic creatives, in the forms the pipeline imports.

- COCO: `raw/<brand>/labels/<brand>_coco.json` (stills) and an Azure ML Data Labeling COCO export
  `raw/<brand>/labels/<brand>_video_frames_azureml.json` (labelled video frames, normalised boxes);
- Azure ML AutoML JSONL: `raw/<brand>/labels/<brand>.jsonl` (stills and frames, normalised boxes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from creative_assets.atomic import atomic_write_json, atomic_write_text
from creative_assets.demo.render import CATEGORIES, Box
from creative_assets.layout import DataRoot

CATEGORY_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(CATEGORIES)}

# Azure names are placeholders of the right shape; the pipeline resolves them by path suffix/basename.
AZURE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
AZURE_RESOURCE_GROUP = "creative-assets-demo"
AZURE_WORKSPACE = "creative-assets"
AZURE_DATASTORE = "workspaceblobstore"


@dataclass
class Labelled:
    """One labelled image: a still (`frame_index` None) or a video frame."""

    creative_id: str
    frame_index: int | None
    width: int
    height: int
    boxes: list[tuple[str, Box]]


def label_format(brand: str, position: int) -> Literal["coco", "jsonl"]:
    """Which label form a brand gets: acme COCO, globex JSONL, others alternate by position."""
    if brand == "acme":
        return "coco"
    if brand == "globex":
        return "jsonl"
    return "coco" if position % 2 == 0 else "jsonl"


def azure_datastore_uri(brand: str, relative: str) -> str:
    """`AmlDatastore://workspaceblobstore/<brand>/<relative>` as in Azure ML Data Labeling exports."""
    return f"AmlDatastore://{AZURE_DATASTORE}/{brand}/{relative}"


def azureml_uri(brand: str, relative: str) -> str:
    """The long-form `azureml://subscriptions/…/paths/<brand>/<relative>` AutoML JSONL uses."""
    return (
        f"azureml://subscriptions/{AZURE_SUBSCRIPTION}/resourcegroups/{AZURE_RESOURCE_GROUP}"
        f"/workspaces/{AZURE_WORKSPACE}/datastores/{AZURE_DATASTORE}/paths/{brand}/{relative}"
    )


def _normalised(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return round(x0 / width, 6), round(y0 / height, 6), round(x1 / width, 6), round(y1 / height, 6)


def _categories() -> list[dict[str, object]]:
    return [{"id": CATEGORY_IDS[c], "name": c, "supercategory": "brand_object"} for c in CATEGORIES]


def _coco_document(brand: str, records: list[Labelled]) -> dict[str, object]:
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        images.append(
            {"id": image_id, "file_name": record.creative_id, "width": record.width, "height": record.height}
        )
        for category, (x0, y0, x1, y1) in record.boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_IDS[category],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "iscrowd": 0,
                }
            )
    return {
        "info": {"description": f"{brand} synthetic demo creatives", "version": "1.0", "year": 2024},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": _categories(),
    }


def _azure_coco_document(brand: str, records: list[Labelled]) -> dict[str, object]:
    images, annotations = [], []
    for image_id, record in enumerate(records, start=1):
        uri = azure_datastore_uri(brand, _frame_reference(record))
        images.append(
            {
                "id": image_id,
                "width": record.width,
                "height": record.height,
                "file_name": uri,
                "coco_url": uri,
                "absolute_url": uri,
                "date_captured": "2024-01-01T00:00:00.000Z",
            }
        )
        for category, box in record.boxes:
            x0, y0, x1, y1 = _normalised(box, record.width, record.height)
            w, h = round(x1 - x0, 6), round(y1 - y0, 6)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "category_id": CATEGORY_IDS[category],
                    "image_id": image_id,
                    "area": round(w * h, 8),
                    "bbox": [x0, y0, w, h],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": annotations, "categories": _categories()}


def _frame_reference(record: Labelled) -> str:
    """`frames/<creative_id>/<frame:06d>.jpg` for a frame, the creative id for a still."""
    if record.frame_index is None:
        return record.creative_id
    return f"frames/{record.creative_id}/{record.frame_index:06d}.jpg"


def _jsonl_text(brand: str, records: list[Labelled]) -> str:
    lines = []
    for record in records:
        fmt = "jpg" if record.frame_index is not None else record.creative_id.rsplit(".", 1)[-1]
        labels = []
        for category, box in record.boxes:
            x0, y0, x1, y1 = _normalised(box, record.width, record.height)
            labels.append(
                {"label": category, "topX": x0, "topY": y0, "bottomX": x1, "bottomY": y1, "isCrowd": 0}
            )
        line = {
            "image_url": azureml_uri(brand, _frame_reference(record)),
            "image_details": {"format": fmt, "width": record.width, "height": record.height},
            "label": labels,
        }
        lines.append(json.dumps(line))
    return "".join(line + "\n" for line in lines)


def write_labels(
    root: DataRoot, brand: str, form: str, stills: list[Labelled], frames: list[Labelled]
) -> list[str]:
    """Write the brand's label files; returns their paths relative to the data root."""
    folder = root.labels(brand)
    written: list[Path] = []
    if form == "coco":
        if stills:
            written.append(folder / f"{brand}_coco.json")
            atomic_write_json(written[-1], _coco_document(brand, stills))
        if frames:
            written.append(folder / f"{brand}_video_frames_azureml.json")
            atomic_write_json(written[-1], _azure_coco_document(brand, frames))
    elif stills or frames:
        written.append(folder / f"{brand}.jsonl")
        atomic_write_text(written[-1], _jsonl_text(brand, stills + frames))
    return [root.relative(p) for p in written]
