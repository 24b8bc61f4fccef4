"""Data versions of the raw files: they change when a file is added, changed or removed, and only then."""

from __future__ import annotations

import os
from pathlib import Path

from creative_assets.layout import DataRoot
from creative_assets.raw_versions import ABSENT, brand_versions, impressions_version, tree_version


def _tree(tmp_path: Path) -> Path:
    folder = tmp_path / "creatives"
    (folder / "videos").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"a")
    (folder / "videos" / "b.mp4").write_bytes(b"bb")
    return folder


def test_the_version_is_stable_while_nothing_changes(tmp_path: Path):
    folder = _tree(tmp_path)
    assert tree_version(folder) == tree_version(folder)
    assert tree_version(folder).startswith("2-")  # two files


def test_an_added_a_changed_and_a_removed_file_each_give_a_new_version(tmp_path: Path):
    folder = _tree(tmp_path)
    seen = {tree_version(folder)}
    (folder / "c.png").write_bytes(b"c")
    seen.add(tree_version(folder))
    st = (folder / "a.jpg").stat()
    (folder / "a.jpg").write_bytes(b"A")  # same size, new content: a new mtime
    os.utime(folder / "a.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    seen.add(tree_version(folder))
    (folder / "videos" / "b.mp4").unlink()
    seen.add(tree_version(folder))
    assert len(seen) == 4


def test_a_missing_creatives_folder_has_no_version_and_missing_labels_are_absent(tmp_path: Path):
    root = DataRoot(tmp_path)
    (tmp_path / "raw" / "acme").mkdir(parents=True)
    versions = brand_versions(root, "acme")
    assert versions.creatives is None and versions.labels == ABSENT
    assert impressions_version(root) == ABSENT
    (tmp_path / "raw" / "impressions.csv").write_text("date,brand,creative_id,impressions\n")
    assert impressions_version(root) != ABSENT
