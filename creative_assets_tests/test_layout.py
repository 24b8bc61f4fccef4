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


def test_a_folder_replaced_by_a_symlink_outside_is_refused_after_it_was_resolved(tmp_path: Path):
    root = DataRoot(tmp_path / "data")
    folder = root.creatives("acme") / "sub"
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.jpg").write_bytes(b"secret")
    assert root.resolve_inside("raw/acme/creatives/sub/a.jpg") == folder / "a.jpg"

    (folder / "a.jpg").unlink()
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)

    with pytest.raises(PathEscapeError):
        root.resolve_inside("raw/acme/creatives/sub/a.jpg")


def test_a_parent_folder_swapped_for_a_symlink_outside_is_refused_after_it_was_resolved(tmp_path: Path):
    root = DataRoot(tmp_path / "data")
    (root.creatives("acme") / "sub").mkdir(parents=True)
    assert root.resolve_inside("raw/acme/creatives/sub/a.jpg").parent == root.creatives("acme") / "sub"
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)

    root.creatives("acme").rename(tmp_path / "moved")
    root.creatives("acme").symlink_to(outside, target_is_directory=True)

    with pytest.raises(PathEscapeError):
        root.resolve_inside("raw/acme/creatives/sub/a.jpg")


def test_symlinks_that_stay_inside_resolve_to_their_target(tmp_path: Path):
    root = DataRoot(tmp_path / "data")
    real = root.creatives("acme") / "real"
    real.mkdir(parents=True)
    (real / "a.jpg").write_bytes(b"x")
    (root.creatives("acme") / "alias").symlink_to(real, target_is_directory=True)
    (real / "b.jpg").symlink_to(real / "a.jpg")

    assert root.resolve_inside("raw/acme/creatives/alias/a.jpg") == real / "a.jpg"
    assert root.resolve_inside("raw/acme/creatives/real/b.jpg") == real / "a.jpg"
    assert root.resolve_inside("raw/acme/creatives/./real/a.jpg") == real / "a.jpg"
    assert root.resolve_inside("raw/acme/creatives/real/../real/a.jpg") == real / "a.jpg"
    assert (
        root.resolve_inside("raw/acme/creatives/missing/new.jpg")
        == root.creatives("acme") / "missing/new.jpg"
    )
    assert root.resolve_inside(".") == root.root


def test_a_file_symlink_leaving_the_root_is_refused(tmp_path: Path):
    root = DataRoot(tmp_path / "data")
    root.creatives("acme").mkdir(parents=True)
    (tmp_path / "secret.jpg").write_bytes(b"x")
    (root.creatives("acme") / "leak.jpg").symlink_to(tmp_path / "secret.jpg")

    with pytest.raises(PathEscapeError):
        root.resolve_inside("raw/acme/creatives/leak.jpg")
    with pytest.raises(PathEscapeError):
        root.resolve_inside(str(tmp_path / "secret.jpg"))
