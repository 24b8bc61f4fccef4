"""The synthetic demo generator: layout, label forms, determinism and that it draws what it labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from pycocotools.coco import COCO

from creative_assets.demo.impressions import IMPRESSIONS_COLUMNS
from creative_assets.demo.label_files import CATEGORY_IDS
from creative_assets.demo.synthetic import DemoDataExistsError, generate_demo_data
from creative_assets.layout import DataRoot

SMALL = {
    "labelled_images": 6,
    "unlabelled_images": 3,
    "labelled_videos": 1,
    "unlabelled_videos": 1,
    # Large enough that the smallest face's open mouth spans a few pixels after JPEG.
    "image_size": (128, 96),
    "video_seconds": 2.0,
    "video_fps": 10,
    "frame_stride": 10,
}
N_FRAMES = 20
_NO_VIDEO = {"labelled_videos": 0, "unlabelled_videos": 0, "image_size": (96, 72)}
CATEGORIES = ("logo", "product", "brand_cue", "face", "smile")


@dataclass(frozen=True)
class Labelled:
    """One labelled image from any of the three label forms, boxes in pixels (x0, y0, x1, y1)."""

    brand: str
    source: str  # label file, relative to the data root
    path: str  # still: relative to the data root; frame: the video's path relative to the data root
    frame_index: int | None
    width: int
    height: int
    boxes: tuple[tuple[str, tuple[float, float, float, float]], ...]


def _after(uri: str, marker: str) -> str:
    assert marker in uri, f"{uri!r} lacks {marker!r}"
    return uri.split(marker, 1)[1]


def _as_image_ref(brand: str, relative: str) -> tuple[str, int | None]:
    """`images/x.jpg` → the still; `frames/videos/v.mp4/000010.jpg` → (video path, 10)."""
    if relative.startswith("frames/"):
        video, frame = relative[len("frames/") :].rsplit("/", 1)
        return f"raw/{brand}/creatives/{video}", int(frame.removesuffix(".jpg"))
    return f"raw/{brand}/creatives/{relative}", None


def read_labels(root: Path) -> list[Labelled]:
    """Every labelled image in every label file under `raw/*/labels/`, parsed with plain json."""
    out: list[Labelled] = []
    for label_file in sorted(root.glob("raw/*/labels/*")):
        brand = label_file.parts[-3]
        source = label_file.relative_to(root).as_posix()
        if label_file.suffix == ".jsonl":
            for line in label_file.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                w, h = record["image_details"]["width"], record["image_details"]["height"]
                path, frame = _as_image_ref(brand, _after(record["image_url"], f"/paths/{brand}/"))
                boxes = tuple(
                    (b["label"], (b["topX"] * w, b["topY"] * h, b["bottomX"] * w, b["bottomY"] * h))
                    for b in record["label"]
                )
                out.append(Labelled(brand, source, path, frame, w, h, boxes))
            continue
        doc = json.loads(label_file.read_text(encoding="utf-8"))
        names = {c["id"]: c["name"] for c in doc["categories"]}
        azure = any(str(i["file_name"]).startswith("AmlDatastore://") for i in doc["images"])
        for image in doc["images"]:
            w, h = image["width"], image["height"]
            scale = (w, h, w, h) if azure else (1, 1, 1, 1)
            boxes = []
            for a in doc["annotations"]:
                if a["image_id"] == image["id"]:
                    x, y, bw, bh = (v * s for v, s in zip(a["bbox"], scale, strict=True))
                    boxes.append((names[a["category_id"]], (x, y, x + bw, y + bh)))
            if azure:
                path, frame = _as_image_ref(brand, _after(image["file_name"], f"/{brand}/"))
            else:
                path, frame = f"raw/{brand}/creatives/{image['file_name']}", None
            out.append(Labelled(brand, source, path, frame, w, h, tuple(boxes)))
    return out


def read_pixels(root: Path, item: Labelled) -> np.ndarray:
    """The BGR pixels a label refers to: the still, or the decoded video frame."""
    if item.frame_index is None:
        img = cv2.imread(str(root / item.path), cv2.IMREAD_COLOR)
    else:
        cap = cv2.VideoCapture(str(root / item.path))
        cap.set(cv2.CAP_PROP_POS_FRAMES, item.frame_index)
        ok, img = cap.read()
        cap.release()
        assert ok
    assert img is not None
    return img


def _pixel_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    return tuple(int(round(v)) for v in box)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate_demo_data(root, seed=3, **SMALL)
    return root


@pytest.fixture(scope="module")
def labels(demo: Path) -> list[Labelled]:
    return read_labels(demo)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_writes_identical_labels_and_pixels(demo: Path, tmp_path: Path) -> None:
    generate_demo_data(tmp_path, seed=3, **SMALL)
    first, second = _files(demo), _files(tmp_path)
    assert first.keys() == second.keys()
    for name in first:
        if "/labels/" in name or name.endswith(".csv"):
            assert first[name] == second[name], name
        elif "/images/" in name:
            a = cv2.imread(str(demo / name), cv2.IMREAD_UNCHANGED)
            b = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(a, b), name


def test_different_seed_changes_labels_and_pixels(demo: Path, tmp_path: Path) -> None:
    generate_demo_data(tmp_path, seed=4, **SMALL)
    first, second = _files(demo), _files(tmp_path)
    assert first.keys() == second.keys()
    assert first["raw/acme/labels/acme_coco.json"] != second["raw/acme/labels/acme_coco.json"]
    assert (
        first["raw/globex/creatives/images/globex_0001.jpg"]
        != second["raw/globex/creatives/images/globex_0001.jpg"]
    )


def test_layout_holds_images_videos_labels_and_impressions(demo: Path) -> None:
    root = DataRoot(demo)
    assert root.brands() == ["acme", "globex"]
    assert root.impressions() == demo / "raw" / "impressions.csv"
    for brand in ("acme", "globex"):
        images = sorted(p.name for p in (root.creatives(brand) / "images").iterdir())
        videos = sorted(p.name for p in (root.creatives(brand) / "videos").iterdir())
        assert len(images) == 9 and len(videos) == 2
        assert {Path(n).suffix for n in images} == {".jpg", ".png"}
    assert sorted(p.name for p in root.labels("acme").iterdir()) == [
        "acme_coco.json",
        "acme_video_frames_azureml.json",
    ]
    assert sorted(p.name for p in root.labels("globex").iterdir()) == ["globex.jsonl"]


def test_summary_counts_match_the_label_files(demo: Path, labels: list[Labelled], tmp_path: Path) -> None:
    summary = generate_demo_data(tmp_path, seed=3, **SMALL)
    assert summary.brands == ("acme", "globex")
    assert summary.images == {"acme": 9, "globex": 9} and summary.videos == {"acme": 2, "globex": 2}
    assert summary.labelled_images == {"acme": 6, "globex": 6}
    assert summary.labelled_frames == {"acme": 2, "globex": 2}
    for brand in ("acme", "globex"):
        counted = {
            c: sum(1 for i in labels if i.brand == brand for n, _ in i.boxes if n == c) for c in CATEGORIES
        }
        assert summary.boxes[brand] == counted
    assert set(summary.label_files) == {p.relative_to(demo).as_posix() for p in demo.glob("raw/*/labels/*")}


def test_every_label_box_lies_inside_its_image_with_positive_area(labels: list[Labelled]) -> None:
    assert sum(len(i.boxes) for i in labels) > 10
    for item in labels:
        for name, (x0, y0, x1, y1) in item.boxes:
            assert name in CATEGORIES
            assert 0 <= x0 < x1 <= item.width + 1e-6, (item, name)
            assert 0 <= y0 < y1 <= item.height + 1e-6, (item, name)


def test_labels_size_matches_the_image_they_refer_to(demo: Path, labels: list[Labelled]) -> None:
    for item in labels:
        assert read_pixels(demo, item).shape[:2] == (item.height, item.width)


def test_coco_file_loads_with_pycocotools_and_ids_are_consistent(demo: Path) -> None:
    coco = COCO(str(demo / "raw/acme/labels/acme_coco.json"))
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == {
        v: k for k, v in CATEGORY_IDS.items()
    }
    assert CATEGORY_IDS == {name: i + 1 for i, name in enumerate(CATEGORIES)}
    assert len(coco.getImgIds()) == 6
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len({a["id"] for a in annotations}) == len(annotations)
    for a in annotations:
        assert a["image_id"] in coco.imgs and a["category_id"] in coco.cats
        assert a["area"] == pytest.approx(a["bbox"][2] * a["bbox"][3])
    for image in coco.imgs.values():
        assert image["file_name"].startswith("images/acme_")
    # Labelled images with nothing on them are listed, just without annotations.
    assert any(not coco.getAnnIds(imgIds=[i]) for i in coco.getImgIds())


def test_azure_coco_export_has_normalised_boxes_and_datastore_names(demo: Path) -> None:
    doc = json.loads((demo / "raw/acme/labels/acme_video_frames_azureml.json").read_text())
    assert [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])] == list(CATEGORIES)
    assert [i["file_name"] for i in doc["images"]] == [
        "AmlDatastore://workspaceblobstore/acme/frames/videos/acme_promo_01.mp4/000000.jpg",
        "AmlDatastore://workspaceblobstore/acme/frames/videos/acme_promo_01.mp4/000010.jpg",
    ]
    for image in doc["images"]:
        assert image["absolute_url"] == image["file_name"]
        assert (image["width"], image["height"]) == SMALL["image_size"]
    assert doc["annotations"]
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= 1 + 1e-6 and y + h <= 1 + 1e-6
        assert a["area"] == pytest.approx(w * h, abs=1e-6)
        assert a["iscrowd"] == 0


def test_jsonl_lines_are_valid_automl_records(demo: Path) -> None:
    lines = (demo / "raw/globex/labels/globex.jsonl").read_text().splitlines()
    assert len(lines) == 6 + 2
    records = [json.loads(line) for line in lines]
    prefix = (
        "azureml://subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/creative-assets-demo/"
        "workspaces/creative-assets/datastores/workspaceblobstore/paths/globex/"
    )
    assert records[0]["image_url"] == prefix + "images/globex_0001.jpg"
    assert records[-1]["image_url"] == prefix + "frames/videos/globex_promo_01.mp4/000010.jpg"
    for record in records:
        details = record["image_details"]
        assert details["format"] == record["image_url"].rsplit(".", 1)[1]
        assert (details["width"], details["height"]) == SMALL["image_size"]
        for box in record["label"]:
            assert box["label"] in CATEGORIES and box["isCrowd"] == 0
            assert 0 <= box["topX"] < box["bottomX"] <= 1 and 0 <= box["topY"] < box["bottomY"] <= 1
    assert any(record["label"] == [] for record in records)


def test_every_referenced_file_exists_and_frames_are_stride_multiples(
    demo: Path, labels: list[Labelled]
) -> None:
    for item in labels:
        assert (demo / item.path).is_file(), item.path
        if item.frame_index is not None:
            assert item.frame_index % SMALL["frame_stride"] == 0 and item.frame_index < N_FRAMES
    frames = {(i.path, i.frame_index) for i in labels if i.frame_index is not None}
    assert frames == {
        (f"raw/{b}/creatives/videos/{b}_promo_01.mp4", f) for b in ("acme", "globex") for f in (0, 10)
    }


def test_unlabelled_creatives_appear_in_no_label_file(demo: Path, labels: list[Labelled]) -> None:
    referenced = {i.path for i in labels}
    for brand in ("acme", "globex"):
        assert f"raw/{brand}/creatives/images/{brand}_0006.jpg" in referenced
        for name in ("images/{b}_0007.png", "images/{b}_0008.jpg", "videos/{b}_promo_02.mp4"):
            assert f"raw/{brand}/creatives/{name.format(b=brand)}" not in referenced


def test_videos_open_with_opencv_and_report_the_expected_frame_count(demo: Path) -> None:
    videos = sorted(demo.glob("raw/*/creatives/videos/*.mp4"))
    assert len(videos) == 4
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        assert cap.isOpened()
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
        decoded = 0
        while cap.read()[0]:
            decoded += 1
        cap.release()
        assert decoded == N_FRAMES


def test_videos_decode_with_pyav(demo: Path) -> None:
    av = pytest.importorskip("av")
    for video in sorted(demo.glob("raw/*/creatives/videos/*.mp4")):
        with av.open(str(video)) as container:
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        assert len(frames) == N_FRAMES and frames[0].shape == (96, 128, 3)


def _logo_coloured(img: np.ndarray, brand: str) -> np.ndarray:
    b, g, r = (img[..., i].astype(int) for i in range(3))
    if brand == "acme":  # red disc
        return (r > 90) & (r - g > 60) & (r - b > 60)
    return (b > 90) & (b - r > 60) & (b - g > 40)  # globex: blue square ring


@pytest.mark.parametrize("kind", ["stills", "frames"])
def test_logo_boxes_hold_the_brand_emblem_colour(demo: Path, labels: list[Labelled], kind: str) -> None:
    checked = 0
    for item in labels:
        if (item.frame_index is None) != (kind == "stills"):
            continue
        img = read_pixels(demo, item)
        coloured = _logo_coloured(img, item.brand)
        outside = np.ones(coloured.shape, bool)
        for _, box in item.boxes:
            x0, y0, x1, y1 = _pixel_box(box)
            outside[y0:y1, x0:x1] = False
        for name, box in item.boxes:
            if name != "logo":
                continue
            x0, y0, x1, y1 = _pixel_box(box)
            inside_share = coloured[y0:y1, x0:x1].mean()
            assert inside_share > 0.4, (item, box)
            assert inside_share - coloured[outside].mean() > 0.3, (item, box)
            checked += 1
    assert checked >= 1


def _mean_grey(
    grey: np.ndarray, box: tuple[float, float, float, float], u: tuple[float, float], v: tuple[float, float]
) -> float:
    """Mean grey level of the part of `box` between fractions `u` (across) and `v` (down)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    xa, xb = int(round(x0 + u[0] * w)), max(int(round(x0 + u[1] * w)), int(round(x0 + u[0] * w)) + 1)
    ya, yb = int(round(y0 + v[0] * h)), max(int(round(y0 + v[1] * h)), int(round(y0 + v[0] * h)) + 1)
    return float(grey[ya:yb, xa:xb].mean())


def test_smile_boxes_lie_inside_face_boxes_over_a_dark_open_mouth(demo: Path, labels: list[Labelled]) -> None:
    smiles = 0
    for item in labels:
        faces = [box for name, box in item.boxes if name == "face"]
        for name, (x0, y0, x1, y1) in item.boxes:
            if name != "smile":
                continue
            face = next(f for f in faces if f[0] <= x0 and f[1] <= y0 and x1 <= f[2] and y1 <= f[3])
            grey = cv2.cvtColor(read_pixels(demo, item), cv2.COLOR_BGR2GRAY)
            cheek = _mean_grey(grey, face, (0.12, 0.24), (0.52, 0.64))
            mouth = _mean_grey(grey, (x0, y0, x1, y1), (0.3, 0.7), (0.5, 0.9))
            assert cheek - mouth > 20, (item, cheek, mouth)
            smiles += 1
    assert smiles >= 2


def test_stills_hold_each_category_in_a_share_and_some_hold_none(tmp_path: Path) -> None:
    generate_demo_data(
        tmp_path,
        brands=("acme",),
        labelled_images=40,
        unlabelled_images=0,
        labelled_videos=0,
        unlabelled_videos=0,
        image_size=(96, 72),
        impressions=False,
    )
    stills = read_labels(tmp_path)
    assert len(stills) == 40
    present = {c: sum(any(n == c for n, _ in i.boxes) for i in stills) / 40 for c in CATEGORIES}
    empty = sum(not i.boxes for i in stills) / 40
    assert 0.1 <= empty <= 0.2
    for category in ("logo", "product", "brand_cue", "face"):
        assert 0.18 <= present[category] <= 0.45, present
    assert 0.1 <= present["smile"] < present["face"], present


def test_refuses_to_write_into_a_brand_folder_that_has_files(tmp_path: Path) -> None:
    existing = tmp_path / "raw" / "acme" / "creatives" / "images" / "mine.jpg"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"not demo data")
    with pytest.raises(DemoDataExistsError, match="overwrite=True"):
        generate_demo_data(tmp_path, brands=("acme",), labelled_images=1, unlabelled_images=0, **_NO_VIDEO)
    assert existing.read_bytes() == b"not demo data"
    assert not (tmp_path / "raw" / "acme" / "labels").exists()


def test_overwrite_replaces_the_brand_folder(tmp_path: Path) -> None:
    stale = tmp_path / "raw" / "acme" / "creatives" / "images" / "stale.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    generate_demo_data(
        tmp_path, brands=("acme",), labelled_images=2, unlabelled_images=0, overwrite=True, **_NO_VIDEO
    )
    assert not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == ["acme_0001.jpg", "acme_0002.png"]


def test_impressions_reference_existing_creatives_daily(demo: Path) -> None:
    table = pd.read_csv(demo / "raw" / "impressions.csv", dtype={"creative_id": str})
    assert tuple(table.columns) == IMPRESSIONS_COLUMNS
    creatives = {(p.parts[-4], "/".join(p.parts[-2:])) for p in demo.glob("raw/*/creatives/*/*")}
    assert set(zip(table["brand"], table["creative_id"], strict=True)) == creatives
    dates = pd.to_datetime(table["date"], format="%Y-%m-%d")
    assert (dates.max() - dates.min()).days < 8 * 7
    assert not table.duplicated(["date", "brand", "creative_id"]).any()
    assert (table["impressions"] >= 0).all() and (table["spend"] >= 0).all()
    assert set(table["channel"]) <= {"social", "display", "video"}


def test_progress_reports_every_creative(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate_demo_data(
        tmp_path,
        brands=("acme",),
        labelled_images=2,
        unlabelled_images=1,
        progress=lambda d, t: calls.append((d, t)),
        **_NO_VIDEO,
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_other_brands_get_their_own_look_and_a_label_form(tmp_path: Path) -> None:
    summary = generate_demo_data(
        tmp_path, brands=("initech", "umbrella"), labelled_images=3, unlabelled_images=0, **_NO_VIDEO
    )
    assert summary.label_files == (
        "raw/initech/labels/initech_coco.json",
        "raw/umbrella/labels/umbrella.jsonl",
    )
    assert len(read_labels(tmp_path)) == 6


def test_invalid_brand_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid brand"):
        generate_demo_data(tmp_path, brands=("Acme Corp",))
    assert not (tmp_path / "raw").exists()


def test_refuses_to_replace_an_existing_impressions_file(tmp_path: Path) -> None:
    existing = tmp_path / "raw" / "impressions.csv"
    existing.parent.mkdir(parents=True)
    existing.write_text("date,brand,creative_id,impressions\n")
    with pytest.raises(DemoDataExistsError, match="impressions.csv"):
        generate_demo_data(tmp_path, brands=("acme",), labelled_images=1, unlabelled_images=0, **_NO_VIDEO)
    assert existing.read_text() == "date,brand,creative_id,impressions\n"
