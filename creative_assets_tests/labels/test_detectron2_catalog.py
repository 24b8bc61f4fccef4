"""Registering COCO splits with detectron2's catalogs (skipped where detectron2 does not import)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from creative_assets.labels.coco_splits import CocoDatasets, build_coco_datasets
from creative_assets.labels.detectron2_catalog import detectron2_available, register_splits
from creative_assets.labels.resolve import ANNOTATION_COLUMNS, LABEL_IMAGE_COLUMNS
from creative_assets.layout import DataRoot

HAVE_DETECTRON2 = detectron2_available()
needs_detectron2 = pytest.mark.skipif(
    not HAVE_DETECTRON2, reason="detectron2 is not importable here (optional; installed from source)"
)


def write_splits(root: DataRoot, folder: str) -> CocoDatasets:
    images = pd.DataFrame(
        [
            {
                "brand": "acme",
                "image_path": f"raw/acme/creatives/s{i}.jpg",
                "creative_id": f"s{i}.jpg",
                "frame_index": None,
                "width": 64,
                "height": 48,
                "source_file": "raw/acme/labels/l.json",
            }
            for i in range(3)
        ],
        columns=LABEL_IMAGE_COLUMNS,
    ).astype({"frame_index": "Int64"})
    annotations = pd.DataFrame(
        [["acme", "raw/acme/creatives/s0.jpg", "logo", 1.0, 2.0, 20.0, 30.0, "raw/acme/labels/l.json", "x"]],
        columns=ANNOTATION_COLUMNS,
    )
    return build_coco_datasets(images, annotations, ["logo"], (0.4, 0.3, 0.3), 0, root.work(folder), root)


@pytest.mark.skipif(HAVE_DETECTRON2, reason="detectron2 is importable here")
def test_register_splits_without_detectron2_raises_an_import_error_saying_how_to_install(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        ImportError, match="register_splits needs detectron2: .*install it from its public source"
    ):
        register_splits(
            "acme_logo", {"train": tmp_path / "train.json"}, tmp_path, {"thing_classes": ["logo"]}
        )


@pytest.mark.detectron2
@needs_detectron2
def test_register_splits_registers_each_split_with_its_metadata(tmp_path: Path) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    root = DataRoot(tmp_path)
    splits = write_splits(root, "a")
    names = register_splits("t_reg_acme_logo", splits.paths, root.root, splits.metadata)
    assert names == ["t_reg_acme_logo_train", "t_reg_acme_logo_valid", "t_reg_acme_logo_test"]
    meta = MetadataCatalog.get("t_reg_acme_logo_train")
    assert meta.thing_classes == ["logo"]
    assert meta.json_file == str(splits.paths["train"].resolve())
    records = [r for name in names for r in DatasetCatalog.get(name)]
    assert len(records) == 3
    assert sum(len(r["annotations"]) for r in records) == 1


@pytest.mark.detectron2
@needs_detectron2
def test_registering_the_same_files_again_is_a_no_op(tmp_path: Path) -> None:
    from detectron2.data import DatasetCatalog

    root = DataRoot(tmp_path)
    splits = write_splits(root, "a")
    register_splits("t_same_acme_logo", splits.paths, root.root, splits.metadata)
    loader = DatasetCatalog["t_same_acme_logo_train"]
    register_splits("t_same_acme_logo", splits.paths, root.root, splits.metadata)
    assert DatasetCatalog["t_same_acme_logo_train"] is loader


@pytest.mark.detectron2
@needs_detectron2
def test_registering_other_files_replaces_the_registration(tmp_path: Path) -> None:
    from detectron2.data import MetadataCatalog

    root = DataRoot(tmp_path)
    first, second = write_splits(root, "a"), write_splits(root, "b")
    register_splits("t_move_acme_logo", first.paths, root.root, first.metadata)
    register_splits("t_move_acme_logo", second.paths, root.root, second.metadata)
    assert MetadataCatalog.get("t_move_acme_logo_valid").json_file == str(second.paths["valid"].resolve())
