"""load_label_file on real COCO, Azure COCO and Azure JSONL files, including hostile ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from creative_assets.labels.importers import (
    FORMAT_AZURE_COCO,
    FORMAT_AZURE_JSONL,
    FORMAT_COCO,
    LabelBox,
    ParsedLabels,
    load_label_file,
)


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def coco(images: list, annotations: list, categories: list | None = None) -> dict:
    cats = categories if categories is not None else [{"id": 1, "name": "logo"}, {"id": 2, "name": "product"}]
    return {"images": images, "annotations": annotations, "categories": cats}


def image(i: int, name: str, width: int = 640, height: int = 480, **extra: object) -> dict:
    return {"id": i, "file_name": name, "width": width, "height": height, **extra}


def ann(i: int, image_id: object, bbox: object, category_id: object = 1, **extra: object) -> dict:
    return {"id": i, "image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": 0, **extra}


def references(parsed: ParsedLabels) -> list[str]:
    return [im.reference for im in parsed.images]


def errors_by_record(parsed: ParsedLabels) -> dict[str, str]:
    return {e.record: e.reason for e in parsed.errors}


def test_standard_coco_boxes_are_read_as_pixel_corners(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "l.json",
        coco(
            [image(1, "images/a.jpg"), image(2, "images/b.jpg")],
            [ann(10, 1, [10, 20, 30, 40]), ann(11, 1, [0, 0, 5, 5], category_id=2)],
        ),
    )
    parsed = load_label_file(path)
    assert parsed.format == FORMAT_COCO
    assert parsed.errors == []
    assert references(parsed) == ["images/a.jpg", "images/b.jpg"]
    a, b = parsed.images
    assert (a.width, a.height, a.record, a.source_file) == (640, 480, "images[0]", path)
    assert a.boxes == [
        LabelBox("logo", 10.0, 20.0, 40.0, 60.0, False, "annotations[0]"),
        LabelBox("product", 0.0, 0.0, 5.0, 5.0, False, "annotations[1]"),
    ]
    assert b.boxes == []


def test_azure_coco_export_with_unit_boxes_is_read_as_normalised(tmp_path: Path) -> None:
    name = "AmlDatastore://workspaceblobstore/acme/frames/videos/v.mp4/000010.jpg"
    path = write_json(
        tmp_path / "azure.json",
        coco(
            [image(1, name, absolute_url="https://x.blob.core.windows.net/c/acme/000010.jpg")],
            [ann(1, 1, [0.1, 0.2, 0.5, 0.25], area=0.125)],
        ),
    )
    parsed = load_label_file(path)
    assert parsed.format == FORMAT_AZURE_COCO
    assert parsed.images[0].reference == name
    box = parsed.images[0].boxes[0]
    assert box.normalised
    assert (box.x_min, box.y_min, box.x_max, box.y_max) == pytest.approx((0.1, 0.2, 0.6, 0.45))


def test_azure_coco_export_with_pixel_boxes_is_read_as_pixels(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "azure.json",
        coco(
            [image(1, "AmlDatastore://store/acme/a.jpg"), image(2, "AmlDatastore://store/acme/b.jpg")],
            [ann(1, 1, [0.1, 0.2, 0.5, 0.25]), ann(2, 2, [10, 20, 30, 40])],
        ),
    )
    parsed = load_label_file(path)
    assert parsed.format == FORMAT_AZURE_COCO
    assert [b.normalised for im in parsed.images for b in im.boxes] == [False, False]


def test_plain_coco_with_a_tiny_box_near_the_origin_stays_in_pixels(tmp_path: Path) -> None:
    path = write_json(tmp_path / "l.json", coco([image(1, "a.jpg")], [ann(1, 1, [0, 0, 1, 1])]))
    parsed = load_label_file(path)
    assert parsed.format == FORMAT_COCO
    assert parsed.images[0].boxes[0].normalised is False


def test_jsonl_lines_are_images_with_normalised_boxes_and_px_sizes(tmp_path: Path) -> None:
    lines = [
        {
            "image_url": "azureml://subscriptions/s/workspaces/w/datastores/d/paths/acme/images/a.jpg",
            "image_details": {"format": "jpg", "width": "640px", "height": "480px"},
            "label": [
                {"label": "logo", "topX": 0.1, "topY": 0.2, "bottomX": 0.3, "bottomY": 0.4, "isCrowd": False},
                {"label": "product", "topX": 0.5, "topY": 0.5, "bottomX": 1, "bottomY": 1, "isCrowd": True},
            ],
        },
        {"image_url": "images/b.jpg", "label": []},
    ]
    path = write_text(tmp_path / "l.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    parsed = load_label_file(path)
    assert parsed.format == FORMAT_AZURE_JSONL
    assert parsed.errors == []
    a, b = parsed.images
    assert (a.width, a.height, a.record) == (640, 480, "line 1")
    assert a.boxes == [
        LabelBox("logo", 0.1, 0.2, 0.3, 0.4, True, "line 1 label[0]", False),
        LabelBox("product", 0.5, 0.5, 1.0, 1.0, True, "line 1 label[1]", True),
    ]
    assert (b.reference, b.width, b.boxes, b.record) == ("images/b.jpg", None, [], "line 2")


def test_malformed_json_is_one_file_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "bad.json", '{"images": [ {"id": 1, ')
    parsed = load_label_file(path)
    assert parsed.images == []
    assert len(parsed.errors) == 1
    assert parsed.errors[0].file == str(path)
    assert parsed.errors[0].reason.startswith("not valid JSON")


def test_top_level_that_is_not_an_object_is_an_error(tmp_path: Path) -> None:
    parsed = load_label_file(write_json(tmp_path / "l.json", [1, 2, 3]))
    assert parsed.images == []
    assert "must hold an object" in parsed.errors[0].reason


def test_truncated_jsonl_line_is_an_error_and_the_other_lines_import(tmp_path: Path) -> None:
    good = json.dumps({"image_url": "a.jpg", "label": []})
    path = write_text(tmp_path / "l.jsonl", f'{good}\n{{"image_url": "b.jpg", "label": [{{"lab\n{good}')
    parsed = load_label_file(path)
    assert [im.record for im in parsed.images] == ["line 1", "line 3"]
    assert list(errors_by_record(parsed)) == ["line 2"]
    assert errors_by_record(parsed)["line 2"].startswith("not valid JSON")


def test_jsonl_line_with_wrong_types_is_an_error_and_the_others_import(tmp_path: Path) -> None:
    rows = [
        {
            "image_url": "a.jpg",
            "label": [{"label": "logo", "topX": "0.1", "topY": 0, "bottomX": 1, "bottomY": 1}],
        },
        {"image_url": None, "label": []},
        {"image_url": "c.jpg", "label": {"label": "logo"}},
        ["not", "an", "object"],
        {"image_url": "e.jpg", "image_details": {"width": "wide"}, "label": []},
        {"image_url": "ok.jpg", "label": []},
    ]
    path = write_text(tmp_path / "l.jsonl", "\n".join(json.dumps(r) for r in rows))
    parsed = load_label_file(path)
    assert references(parsed) == ["ok.jpg"]
    errors = errors_by_record(parsed)
    assert "label[0].topX must be a number, not the string '0.1'" in errors["line 1"]
    assert "image_url must be a non-empty string, not null" in errors["line 2"]
    assert "label must be a list" in errors["line 3"]
    assert "must hold an object, not a list" in errors["line 4"]
    assert "image_details.width must be a whole number" in errors["line 5"]


def test_coco_records_with_wrong_types_are_errors_and_good_records_import(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "l.json",
        coco(
            [
                image(1, "good.jpg"),
                image(None, "null-id.jpg"),
                ["a", "list"],
                image(4, "bad-width.jpg", width=[640]),
                image(5, "bad-box.jpg"),
                image(6, "bool-box.jpg"),
            ],
            [ann(1, 1, [1, 2, 3, 4]), ann(2, 5, {"x": 1}), ann(3, 6, [True, 0, 1, 1])],
        ),
    )
    parsed = load_label_file(path)
    assert references(parsed) == ["good.jpg"]
    assert len(parsed.images[0].boxes) == 1
    errors = errors_by_record(parsed)
    assert "id must be an integer or a string, not null" in errors["images[1]"]
    assert "an image must be an object, not a list" in errors["images[2]"]
    assert "width must be a number, not a list; image and its annotations skipped" in errors["images[3]"]
    assert "bbox must be a list of 4 numbers" in errors["annotations[1]"]
    assert "bbox[0] must be a number, not a boolean" in errors["annotations[2]"]
    assert errors["images[4]"] == "image skipped: its annotation annotations[1] was rejected"
    assert errors["images[5]"] == "image skipped: its annotation annotations[2] was rejected"


@pytest.mark.parametrize(
    ("literal", "reason"),
    [
        ("NaN", "must be a finite number"),
        ("Infinity", "must be a finite number"),
        ("-Infinity", "must be a finite number"),
        ("1e400", "must be a finite number"),
        ("1e308", "out of range"),
        ("1" + "0" * 400, "out of range"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused(tmp_path: Path, literal: str, reason: str) -> None:
    text = (
        '{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],'
        ' "categories": [{"id": 1, "name": "logo"}],'
        f' "annotations": [{{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, {literal}, 5]}},'
        ' {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5]}]}'
    )
    parsed = load_label_file(write_text(tmp_path / "l.json", text))
    assert references(parsed) == ["b.jpg"]
    assert reason in errors_by_record(parsed)["annotations[0]"]


def test_integer_literal_over_the_parser_limit_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "l.jsonl", '{"image_url": "a.jpg", "image_details": {"width": ' + "9" * 5000 + "}}"
    )
    parsed = load_label_file(path)
    assert parsed.images == []
    assert errors_by_record(parsed)["line 1"].startswith("not valid JSON")


def test_absurdly_nested_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    parsed = load_label_file(write_text(tmp_path / "l.json", "[" * 200_000 + "]" * 200_000))
    assert parsed.images == []
    assert parsed.errors[0].reason.startswith("not valid JSON")


def test_duplicate_image_ids_skip_both_images_and_keep_the_rest(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "l.json",
        coco(
            [image(1, "a.jpg"), image(2, "b.jpg"), image(1, "c.jpg")],
            [ann(1, 1, [0, 0, 5, 5]), ann(2, 2, [0, 0, 5, 5])],
        ),
    )
    parsed = load_label_file(path)
    assert references(parsed) == ["b.jpg"]
    errors = errors_by_record(parsed)
    assert "duplicate image id 1 (also at images[0])" in errors["images[2]"]
    assert "duplicate image id 1 (also at images[2])" in errors["images[0]"]


def test_duplicate_annotation_id_is_an_error_and_skips_its_image(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "l.json",
        coco(
            [image(1, "a.jpg"), image(2, "b.jpg")],
            [ann(7, 1, [0, 0, 5, 5]), ann(7, 2, [1, 1, 5, 5])],
        ),
    )
    parsed = load_label_file(path)
    assert references(parsed) == ["a.jpg"]
    errors = errors_by_record(parsed)
    assert "duplicate annotation id 7 (first at annotations[0])" in errors["annotations[1]"]
    assert "annotations[1] was rejected" in errors["images[1]"]


def test_annotation_naming_an_unknown_image_or_category_is_an_error(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "l.json",
        coco(
            [image(1, "a.jpg"), image(2, "b.jpg")],
            [ann(1, 99, [0, 0, 5, 5]), ann(2, 2, [0, 0, 5, 5], category_id=42), ann(3, 1, [0, 0, 5, 5])],
        ),
    )
    parsed = load_label_file(path)
    assert references(parsed) == ["a.jpg"]
    errors = errors_by_record(parsed)
    assert "image_id 99 is not among the file's images" in errors["annotations[0]"]
    assert "category_id 42 is not among the file's categories" in errors["annotations[1]"]


def test_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    path = write_json(tmp_path / "l.json", coco([image(1, "a.jpg")], []))
    parsed = load_label_file(path, max_bytes=10)
    assert parsed.images == []
    assert "over the 10-byte limit" in parsed.errors[0].reason


def test_jsonl_line_that_is_not_utf8_costs_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"image_url": "\xff.jpg"}\n{"image_url": "ok.jpg"}\n')
    parsed = load_label_file(path)
    assert references(parsed) == ["ok.jpg"]
    assert errors_by_record(parsed)["line 1"].startswith("not UTF-8 text")
