from pathlib import Path

import pytest

from creative_assets.layout import DataRoot, PathEscapeError


def test_warehouse_paths_are_hive_partitioned(tmp_path: Path):
    root = DataRoot(tmp_path)
    assert (
        root.warehouse("coco_datasets", "acme", "logo")
        == tmp_path.resolve() / "warehouse/coco_datasets/brand=acme/object=logo"
    )


def test_frame_path_keeps_the_creative_path(tmp_path: Path):
    root = DataRoot(tmp_path)
    assert (
        root.frame_path("acme", "videos/a.mp4", 10).relative_to(root.root).as_posix()
        == "frames/acme/videos/a.mp4/000010.jpg"
    )


def test_brands_lists_only_valid_folder_names(tmp_path: Path):
    for name in ("acme", "globex", "Bad Name", ".hidden"):
        (tmp_path / "raw" / name).mkdir(parents=True)
    (tmp_path / "raw" / "impressions.csv").write_text("x")
    assert DataRoot(tmp_path).brands() == ["acme", "globex"]


def test_paths_escaping_the_root_are_refused(tmp_path: Path):
    root = DataRoot(tmp_path / "data")
    with pytest.raises(PathEscapeError):
        root.resolve_inside("../outside.jpg")
    with pytest.raises(PathEscapeError):
        root.relative(tmp_path / "elsewhere.jpg")


def test_invalid_brand_never_becomes_a_path(tmp_path: Path):
    with pytest.raises(ValueError):
        DataRoot(tmp_path).raw("../../etc")
