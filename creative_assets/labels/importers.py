"""Read label files in the three formats a brand may drop into `raw/<brand>/labels/`.

- Standard COCO json: `images`, `annotations` (bbox `[x, y, w, h]` in pixels), `categories`.
- Azure ML Data Labeling COCO export: the same shape with bbox normalised to 0–1 and Azure names.
- Azure ML AutoML JSONL (`.jsonl`): one image per line, `image_url`, optional `image_details`, and `label`,
  a list of `{label, topX, topY, bottomX, bottomY, isCrowd}` normalised to 0–1.

Whether a `.json` file holds normalised boxes is decided once per file (never per box, since a small pixel
box near the origin looks normalised): the file is an Azure export when any image has an `absolute_url`
key or any image name (`file_name`, `coco_url`) starts with `AmlDatastore://` or `azureml://`; an Azure
export's boxes are read as normalised when every readable bbox lies within [0, 1] (x + w and y + h too),
and as pixels otherwise (some exports already convert to pixels). A plain COCO file is always pixels.

Input is untrusted: the parser only uses `json`, checks every type and number, and turns each problem into
an itemised `LabelError` naming the file, the record (`images[3]`, `annotations[7]`, `line 12`) and the
reason, while every other record of the file is still imported. A record is imported whole or not at all:
because labels are exhaustive per image, an image one of whose boxes cannot be read is left out rather than
kept with a missing box (which would teach a false negative).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_LABEL_FILE_BYTES = 200 * 1024 * 1024
# Larger than any real image side yet far from float overflow, so arithmetic on coordinates stays exact.
MAX_COORDINATE = 1_000_000.0
MAX_IMAGE_SIDE = 1_000_000

FORMAT_COCO = "coco"
FORMAT_AZURE_COCO = "azure_coco"
FORMAT_AZURE_JSONL = "azure_jsonl"

_AZURE_SCHEMES = ("amldatastore://", "azureml://")
_PIXEL_SIZE = re.compile(r"^\s*(\d{1,7})\s*(?:px)?\s*$", re.IGNORECASE)
_NORMALISED_SLACK = 1e-6


@dataclass(frozen=True)
class LabelError:
    """One problem in a label file: which file, which record and why."""

    file: str
    record: str
    reason: str


@dataclass(frozen=True)
class LabelBox:
    """One box as written in the file: pixels, or fractions of the image size when `normalised`."""

    category: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    normalised: bool
    record: str
    iscrowd: bool = False


@dataclass
class LabelImage:
    """One labelled image as the file names it; `width`/`height` are the file's claim, if any."""

    reference: str
    width: int | None
    height: int | None
    boxes: list[LabelBox]
    record: str
    source_file: Path


@dataclass
class ParsedLabels:
    """Everything readable in one label file plus an itemised list of what was not."""

    source_file: Path
    format: str
    images: list[LabelImage] = field(default_factory=list)
    errors: list[LabelError] = field(default_factory=list)


class _Invalid(ValueError):
    """A record that fails a check; the message is the reason."""


def load_label_file(path: Path, max_bytes: int = MAX_LABEL_FILE_BYTES) -> ParsedLabels:
    """Parse one `.json` (COCO or Azure COCO) or `.jsonl` (Azure AutoML) label file; never raises on content."""
    path = Path(path)
    is_jsonl = path.suffix.lower() == ".jsonl"
    parsed = ParsedLabels(source_file=path, format=FORMAT_AZURE_JSONL if is_jsonl else FORMAT_COCO)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            parsed.errors.append(
                LabelError(str(path), "", f"file is {size} bytes, over the {max_bytes}-byte limit; not read")
            )
            return parsed
        data = path.read_bytes()
    except OSError as err:
        parsed.errors.append(LabelError(str(path), "", f"cannot read the file: {err.strerror or err}"))
        return parsed
    if is_jsonl:
        _parse_jsonl(data, parsed)
    else:
        _parse_coco(data, parsed)
    return parsed


# ---------------------------------------------------------------------------------------------- checks


def _number(value: Any, what: str, limit: float = MAX_COORDINATE) -> float:
    # bool is an int subclass in Python, but `true` is never a coordinate.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"{what} must be a number, not {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(f"{what} must be a finite number, not {value!r}")
    # Compared before converting: float() of a huge JSON integer overflows.
    if abs(value) > limit:
        raise _Invalid(f"{what} {_describe(value)} is out of range (|value| > {limit:g})")
    return float(value)


def _side(value: Any, what: str) -> int | None:
    """An image side in pixels: a positive whole number, or `"640px"` as Azure JSONL writes it."""
    if value is None:
        return None
    if isinstance(value, str):
        match = _PIXEL_SIZE.match(value)
        if not match:
            raise _Invalid(f"{what} must be a whole number of pixels, not {value[:40]!r}")
        number = float(match.group(1))
    else:
        number = _number(value, what, limit=MAX_IMAGE_SIDE)
    if number <= 0 or number != int(number):
        raise _Invalid(f"{what} must be a positive whole number of pixels, not {value!r}")
    if number > MAX_IMAGE_SIDE:
        raise _Invalid(f"{what} {value!r} is out of range (> {MAX_IMAGE_SIDE})")
    return int(number)


def _flag(value: Any, what: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "0", "1"):
        return value.strip().lower() in ("true", "1")
    raise _Invalid(f"{what} must be true/false or 0/1, not {_describe(value)}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"{what} must be a non-empty string, not {_describe(value)}")
    if "\x00" in value:
        raise _Invalid(f"{what} contains a NUL character")
    return value.strip()


def _identifier(value: Any, what: str) -> Hashable:
    # COCO ids are integers; some tools write strings. Floats, bools, nulls and containers are refused
    # because `1.0` vs `1` or `true` vs `1` would silently alias.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _Invalid(f"{what} must be an integer or a string, not {_describe(value)}")
    if isinstance(value, str) and not value:
        raise _Invalid(f"{what} must not be empty")
    return value


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return repr(value)[:40]


def _loads(text: str) -> Any:
    """`json.loads`; the reason as `_Invalid` for malformed text, absurd nesting or over-long integers."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _Invalid("not valid JSON: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, and the int-digits limit on huge integer literals
        raise _Invalid(f"not valid JSON: {err}") from None


# ---------------------------------------------------------------------------------------------- COCO


def _parse_coco(data: bytes, parsed: ParsedLabels) -> None:
    file = str(parsed.source_file)
    try:
        doc = _loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        parsed.errors.append(LabelError(file, "", f"not UTF-8 text: {err.reason} at byte {err.start}"))
        return
    except _Invalid as err:
        parsed.errors.append(LabelError(file, "", str(err)))
        return
    if not isinstance(doc, dict):
        parsed.errors.append(LabelError(file, "", f"a COCO file must hold an object, not {_describe(doc)}"))
        return

    sections: dict[str, list[Any]] = {}
    for key, required in (("images", True), ("annotations", False), ("categories", False)):
        value = doc.get(key)
        if value is None and not required:
            sections[key] = []
        elif not isinstance(value, list):
            parsed.errors.append(LabelError(file, key, f"'{key}' must be a list, not {_describe(value)}"))
            sections[key] = []
        else:
            sections[key] = value

    categories = _coco_categories(sections["categories"], file, parsed.errors)
    images, image_records, rejected = _coco_images(sections["images"], file, parsed)
    normalised = parsed.format == FORMAT_AZURE_COCO and _all_normalised(sections["annotations"])

    boxes: dict[Hashable, list[LabelBox]] = {key: [] for key in images}
    failed: dict[Hashable, str] = {}
    seen_ann: dict[Hashable, int] = {}
    for i, ann in enumerate(sections["annotations"]):
        record = f"annotations[{i}]"
        image_id: Hashable | None = None
        try:
            if not isinstance(ann, dict):
                raise _Invalid(f"an annotation must be an object, not {_describe(ann)}")
            image_id = _identifier(ann.get("image_id"), "image_id")
            if image_id in rejected:
                # The image itself was refused with its own error row; its boxes go with it.
                continue
            if image_id not in images:
                raise _Invalid(f"image_id {image_id!r} is not among the file's images")
            ann_id = _identifier(ann.get("id"), "id")
            if ann_id in seen_ann:
                raise _Invalid(
                    f"duplicate annotation id {ann_id!r} (first at annotations[{seen_ann[ann_id]}])"
                )
            seen_ann[ann_id] = i
            boxes[image_id].append(_coco_box(ann, categories, normalised, record))
        except _Invalid as err:
            parsed.errors.append(LabelError(file, record, str(err)))
            if image_id is not None and image_id in images and image_id not in failed:
                failed[image_id] = record

    for key, image in images.items():
        if key in failed:
            parsed.errors.append(
                LabelError(
                    file, image_records[key], f"image skipped: its annotation {failed[key]} was rejected"
                )
            )
            continue
        image.boxes = boxes[key]
        parsed.images.append(image)


def _identified(
    items: list[Any], section: str, noun: str, file: str, errors: list[LabelError]
) -> Iterator[tuple[int, str, dict[str, Any], Hashable]]:
    """(index, record, item, id) of each item of a COCO section that is an object with a valid id; an error
    naming its record for every other item."""
    for i, item in enumerate(items):
        record = f"{section}[{i}]"
        try:
            if not isinstance(item, dict):
                raise _Invalid(f"{noun} must be an object, not {_describe(item)}")
            identifier = _identifier(item.get("id"), "id")
        except _Invalid as err:
            errors.append(LabelError(file, record, str(err)))
            continue
        yield i, record, item, identifier


def _coco_categories(items: list[Any], file: str, errors: list[LabelError]) -> dict[Hashable, str]:
    categories: dict[Hashable, str] = {}
    first: dict[Hashable, int] = {}
    for i, record, item, cat_id in _identified(items, "categories", "a category", file, errors):
        try:
            name = _text(item.get("name"), "name")
            if cat_id in first:
                raise _Invalid(f"duplicate category id {cat_id!r} (first at categories[{first[cat_id]}])")
        except _Invalid as err:
            errors.append(LabelError(file, record, str(err)))
            continue
        first[cat_id] = i
        categories[cat_id] = name
    return categories


def _coco_images(
    items: list[Any], file: str, parsed: ParsedLabels
) -> tuple[dict[Hashable, LabelImage], dict[Hashable, str], set[Hashable]]:
    """Readable images by id, each image's record, and the ids whose image was refused."""
    if any(_is_azure_image(item) for item in items):
        parsed.format = FORMAT_AZURE_COCO
    images: dict[Hashable, LabelImage] = {}
    records: dict[Hashable, str] = {}
    rejected: set[Hashable] = set()
    first: dict[Hashable, int] = {}
    for i, record, item, image_id in _identified(items, "images", "an image", file, parsed.errors):
        if image_id in first:
            # Which of the two images an annotation with this id belongs to is unknowable: drop both.
            parsed.errors.append(
                LabelError(
                    file,
                    record,
                    f"duplicate image id {image_id!r} (also at images[{first[image_id]}]); "
                    "both images and their annotations are skipped",
                )
            )
            if image_id in images:
                parsed.errors.append(
                    LabelError(
                        file,
                        records[image_id],
                        f"duplicate image id {image_id!r} (also at {record}); image skipped",
                    )
                )
                del images[image_id]
            rejected.add(image_id)
            continue
        first[image_id] = i
        try:
            reference = _coco_reference(item)
            width = _side(item.get("width"), "width")
            height = _side(item.get("height"), "height")
        except _Invalid as err:
            parsed.errors.append(LabelError(file, record, f"{err}; image and its annotations skipped"))
            rejected.add(image_id)
            continue
        images[image_id] = LabelImage(reference, width, height, [], record, parsed.source_file)
        records[image_id] = record
    return images, records, rejected


def _coco_reference(item: dict[str, Any]) -> str:
    for key in ("file_name", "coco_url", "absolute_url"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return _text(value, key)
    raise _Invalid("the image has no file_name (nor coco_url / absolute_url)")


def _is_azure_image(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if "absolute_url" in item:
        return True
    return any(
        isinstance(item.get(key), str) and item[key].strip().lower().startswith(_AZURE_SCHEMES)
        for key in ("file_name", "coco_url")
    )


def _all_normalised(annotations: list[Any]) -> bool:
    """True when every readable bbox lies within the unit square; unreadable ones are errors elsewhere."""
    for ann in annotations:
        bbox = ann.get("bbox") if isinstance(ann, dict) else None
        if not isinstance(bbox, list) or len(bbox) != 4:
            continue
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in bbox):
            continue
        if not all(math.isfinite(v) for v in bbox):
            continue
        x, y, w, h = bbox
        if (
            min(x, y, w, h) < -_NORMALISED_SLACK
            or x + w > 1 + _NORMALISED_SLACK
            or y + h > 1 + _NORMALISED_SLACK
        ):
            return False
    return True


def _coco_box(
    ann: dict[str, Any], categories: dict[Hashable, str], normalised: bool, record: str
) -> LabelBox:
    cat_id = _identifier(ann.get("category_id"), "category_id")
    if cat_id not in categories:
        raise _Invalid(f"category_id {cat_id!r} is not among the file's categories")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise _Invalid(f"bbox must be a list of 4 numbers [x, y, w, h], not {_describe(bbox)}")
    x, y, w, h = (_number(v, f"bbox[{k}]") for k, v in enumerate(bbox))
    iscrowd = _flag(ann.get("iscrowd"), "iscrowd")
    return LabelBox(categories[cat_id], x, y, x + w, y + h, normalised, record, iscrowd)


# ---------------------------------------------------------------------------------------------- JSONL


def _parse_jsonl(data: bytes, parsed: ParsedLabels) -> None:
    file = str(parsed.source_file)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Each line is decoded on its own so one bad byte costs one record, not the file.
    for number, raw in enumerate(data.split(b"\n"), start=1):
        record = f"line {number}"
        if not raw.strip():
            continue
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise _Invalid(f"not UTF-8 text: {err.reason} at byte {err.start}") from None
            parsed.images.append(_jsonl_image(_loads(text), record, parsed.source_file))
        except _Invalid as err:
            parsed.errors.append(LabelError(file, record, str(err)))


def _jsonl_image(obj: Any, record: str, source: Path) -> LabelImage:
    if not isinstance(obj, dict):
        raise _Invalid(f"a line must hold an object, not {_describe(obj)}")
    reference = _text(obj.get("image_url"), "image_url")
    details = obj.get("image_details")
    width = height = None
    if details is not None:
        if not isinstance(details, dict):
            raise _Invalid(f"image_details must be an object, not {_describe(details)}")
        width = _side(details.get("width"), "image_details.width")
        height = _side(details.get("height"), "image_details.height")
    labels = obj.get("label")
    if labels is None:
        labels = []
    if not isinstance(labels, list):
        raise _Invalid(f"label must be a list of boxes, not {_describe(labels)}")
    boxes = []
    for k, item in enumerate(labels):
        where = f"label[{k}]"
        if not isinstance(item, dict):
            raise _Invalid(f"{where} must be an object, not {_describe(item)}")
        category = _text(item.get("label"), f"{where}.label")
        coords = [_number(item.get(key), f"{where}.{key}") for key in ("topX", "topY", "bottomX", "bottomY")]
        iscrowd = _flag(item.get("isCrowd"), f"{where}.isCrowd")
        boxes.append(
            LabelBox(category, *coords, normalised=True, record=f"{record} {where}", iscrowd=iscrowd)
        )
    return LabelImage(reference, width, height, boxes, record, source)
