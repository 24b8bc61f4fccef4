"""scan_creatives and sha256_file on real files written with OpenCV."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creative_assets.layout import DataRoot
from creative_assets.media.manifest import (
    ERROR_COLUMNS,
    MANIFEST_COLUMNS,
    CreativesFolderError,
    scan_creatives,
    sha256_file,
)
from creative_assets_tests.support.media_builders import write_image, write_video

BRAND = "acme"


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data")


def creatives(root: DataRoot) -> Path:
    folder = root.creatives(BRAND)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def reasons(errors: pd.DataFrame) -> dict[str, str]:
    return dict(zip(errors["file"], errors["reason"], strict=True))


def test_images_and_videos_in_nested_folders_are_listed_with_their_properties(root: DataRoot) -> None:
    folder = creatives(root)
    write_image(folder / "banners" / "2024" / "a.png", size=(40, 30))
    write_video(folder / "videos" / "spot.mp4", frames=25, size=(64, 48), fps=10.0)

    manifest, errors = scan_creatives(root, BRAND)

    assert errors.empty
    assert list(manifest["creative_id"]) == ["banners/2024/a.png", "videos/spot.mp4"]
    image, video = manifest.iloc[0], manifest.iloc[1]
    assert (image["media_type"], image["width"], image["height"]) == ("image", 40, 30)
    assert image["path"] == "raw/acme/creatives/banners/2024/a.png"
    assert pd.isna(image["fps"]) and pd.isna(image["frame_count"]) and pd.isna(image["duration_s"])
    assert (video["media_type"], video["width"], video["height"]) == ("video", 64, 48)
    assert (video["fps"], video["frame_count"], video["duration_s"]) == (10.0, 25, 2.5)
    assert video["bytes"] == (folder / "videos" / "spot.mp4").stat().st_size
    assert video["sha256"] == hashlib.sha256((folder / "videos" / "spot.mp4").read_bytes()).hexdigest()


def test_tables_have_the_documented_columns_and_dtypes(root: DataRoot) -> None:
    folder = creatives(root)
    write_image(folder / "a.jpg")
    write_video(folder / "b.mp4")
    (folder / "c.txt").write_text("not a creative")

    manifest, errors = scan_creatives(root, BRAND)

    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert list(errors.columns) == ERROR_COLUMNS
    assert manifest.dtypes.astype(str).to_dict() == {
        "brand": "string",
        "creative_id": "string",
        "media_type": "string",
        "path": "string",
        "width": "Int64",
        "height": "Int64",
        "fps": "float64",
        "frame_count": "Int64",
        "duration_s": "float64",
        "bytes": "int64",
        "sha256": "string",
        "mtime_ns": "int64",
        "inode": "int64",
    }
    assert set(errors.dtypes.astype(str)) == {"string"}


def test_missing_creatives_folder_is_an_error_naming_the_path(root: DataRoot) -> None:
    root.raw(BRAND).mkdir(parents=True)
    with pytest.raises(CreativesFolderError, match=r"raw/acme/creatives .* does not exist"):
        scan_creatives(root, BRAND)


def test_unreadable_creatives_folder_is_an_error_naming_the_path(root: DataRoot) -> None:
    folder = creatives(root)
    write_image(folder / "a.png")
    folder.chmod(0o000)
    try:
        if os.access(folder, os.R_OK):
            pytest.skip("running as a user that reads any folder")
        with pytest.raises(CreativesFolderError, match=r"raw/acme/creatives .* cannot be read"):
            scan_creatives(root, BRAND)
    finally:
        folder.chmod(0o755)


def test_empty_creatives_folder_gives_empty_typed_tables(root: DataRoot) -> None:
    creatives(root)
    manifest, errors = scan_creatives(root, BRAND)

    assert manifest.empty and errors.empty
    assert list(manifest.columns) == MANIFEST_COLUMNS and list(errors.columns) == ERROR_COLUMNS
    assert str(manifest["width"].dtype) == "Int64" and str(manifest["brand"].dtype) == "string"
    assert str(errors["reason"].dtype) == "string"


def test_zero_byte_and_corrupt_images_are_error_rows(root: DataRoot) -> None:
    folder = creatives(root)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(2000))
    write_image(folder / "good.jpg")

    manifest, errors = scan_creatives(root, BRAND)

    assert list(manifest["creative_id"]) == ["good.jpg"]
    found = reasons(errors)
    assert found["raw/acme/creatives/empty.jpg"].startswith("unreadable image:")
    assert found["raw/acme/creatives/noise.jpg"].startswith("unreadable image:")
    assert set(errors["stage"]) == {"manifest"} and set(errors["brand"]) == {BRAND}


def test_zero_byte_and_truncated_videos_are_error_rows(root: DataRoot) -> None:
    folder = creatives(root)
    (folder / "empty.mp4").write_bytes(b"")
    whole = write_video(folder / "whole.mp4").read_bytes()
    # OpenCV's writer puts the index (moov) at the end, so the first half cannot even be opened.
    (folder / "half.mp4").write_bytes(whole[: len(whole) // 2])

    manifest, errors = scan_creatives(root, BRAND)

    assert list(manifest["creative_id"]) == ["whole.mp4"]
    found = reasons(errors)
    assert found["raw/acme/creatives/empty.mp4"] == "unreadable video: empty file"
    assert found["raw/acme/creatives/half.mp4"].startswith("unreadable video:")


def test_unsupported_extension_is_an_error_row(root: DataRoot) -> None:
    folder = creatives(root)
    (folder / "notes.xyz").write_text("hello")
    (folder / "README").write_text("hello")

    manifest, errors = scan_creatives(root, BRAND)

    assert manifest.empty
    assert reasons(errors) == {
        "raw/acme/creatives/README": "unsupported extension (none)",
        "raw/acme/creatives/notes.xyz": "unsupported extension .xyz",
    }


def test_extensions_match_case_insensitively(root: DataRoot) -> None:
    folder = creatives(root)
    write_image(folder / "upper.png")
    (folder / "upper.png").rename(folder / "UPPER.PNG")
    write_video(folder / "CLIP.MP4")

    manifest, errors = scan_creatives(root, BRAND)

    assert errors.empty
    assert dict(zip(manifest["creative_id"], manifest["media_type"], strict=True)) == {
        "CLIP.MP4": "video",
        "UPPER.PNG": "image",
    }


def test_hidden_files_and_folders_are_skipped(root: DataRoot) -> None:
    folder = creatives(root)
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    write_image(folder / ".cache" / "thumb.jpg")
    write_image(folder / "shown.jpg")

    manifest, errors = scan_creatives(root, BRAND)

    assert list(manifest["creative_id"]) == ["shown.jpg"] and errors.empty


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlinks_escaping_the_root_are_error_rows_and_never_read(root: DataRoot, tmp_path: Path) -> None:
    folder = creatives(root)
    outside = tmp_path / "outside"
    write_image(outside / "secret.jpg")
    (folder / "leak.jpg").symlink_to(outside / "secret.jpg")
    (folder / "leakdir").symlink_to(outside, target_is_directory=True)
    write_image(folder / "real" / "ok.jpg")
    (folder / "alias.jpg").symlink_to(folder / "real" / "ok.jpg")

    manifest, errors = scan_creatives(root, BRAND)

    assert list(manifest["creative_id"]) == ["alias.jpg", "real/ok.jpg"]
    assert reasons(errors) == {
        "raw/acme/creatives/leak.jpg": "symlink points outside the data root",
        "raw/acme/creatives/leakdir": "symlink points outside the data root",
    }


def test_scan_order_is_sorted_by_creative_id(root: DataRoot) -> None:
    folder = creatives(root)
    for name in ["b.jpg", "a/z.jpg", "a.jpg", "c/d/e.png"]:
        write_image(folder / name)

    manifest, _ = scan_creatives(root, BRAND)

    assert list(manifest["creative_id"]) == ["a.jpg", "a/z.jpg", "b.jpg", "c/d/e.png"]


def test_progress_is_reported_once_per_file(root: DataRoot) -> None:
    folder = creatives(root)
    write_image(folder / "a.jpg")
    write_image(folder / "b.jpg")
    (folder / "c.xyz").write_text("x")
    calls: list[tuple[int, int]] = []

    scan_creatives(root, BRAND, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_sha256_file_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    data = np.random.default_rng(1).bytes((1 << 20) * 2 + 123)
    path.write_bytes(data)

    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """Overwrite `path` in place (same inode) with `data` of the same length, then set its old mtime back."""
    before = path.stat()
    assert len(data) == before.st_size
    with open(path, "r+b") as f:
        f.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )


def test_a_rescan_keeps_the_row_of_a_file_whose_size_mtime_and_inode_are_unchanged(root: DataRoot) -> None:
    folder = creatives(root)
    image = write_image(folder / "a.png")
    write_image(folder / "b.png", size=(20, 10))
    first, _ = scan_creatives(root, BRAND)
    # Bytes that no decoder reads as an image: reading the file again could only give an errors row.
    _rewrite_keeping_size_and_mtime(image, b"\0" * image.stat().st_size)

    again, errors = scan_creatives(root, BRAND, previous=first)

    assert errors.empty
    pd.testing.assert_frame_equal(again, first)


def test_without_a_previous_manifest_every_file_is_read_again(root: DataRoot) -> None:
    image = write_image(creatives(root) / "a.png")
    first, _ = scan_creatives(root, BRAND)
    _rewrite_keeping_size_and_mtime(image, b"\0" * image.stat().st_size)

    again, errors = scan_creatives(root, BRAND, previous=None)

    assert again.empty
    assert list(errors["file"]) == ["raw/acme/creatives/a.png"]
    assert errors["reason"].iloc[0].startswith("unreadable image")


def test_a_file_with_a_new_size_is_read_again(root: DataRoot) -> None:
    image = write_image(creatives(root) / "a.png", size=(40, 30))
    first, _ = scan_creatives(root, BRAND)
    mtime = image.stat().st_mtime_ns
    write_image(image, size=(50, 30))
    os.utime(image, ns=(mtime, mtime))

    again, _ = scan_creatives(root, BRAND, previous=first)

    assert (again["width"].iloc[0], again["bytes"].iloc[0]) == (50, image.stat().st_size)
    assert (
        again["sha256"].iloc[0] == hashlib.sha256(image.read_bytes()).hexdigest() != first["sha256"].iloc[0]
    )


def test_a_file_with_a_new_mtime_is_read_again(root: DataRoot) -> None:
    image = write_image(creatives(root) / "a.png")
    first, _ = scan_creatives(root, BRAND)
    _rewrite_keeping_size_and_mtime(image, b"\0" * image.stat().st_size)
    mtime = image.stat().st_mtime_ns + 1_000_000_000
    os.utime(image, ns=(mtime, mtime))

    again, errors = scan_creatives(root, BRAND, previous=first)

    assert again.empty and list(errors["file"]) == ["raw/acme/creatives/a.png"]


def test_a_file_replaced_by_another_with_the_same_size_and_mtime_is_read_again(root: DataRoot) -> None:
    image = write_image(creatives(root) / "a.png")
    first, _ = scan_creatives(root, BRAND)
    old = image.stat()
    replacement = image.with_name(".replacement")
    replacement.write_bytes(b"\0" * old.st_size)
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(replacement, image)  # a new inode, as a restore or a sync tool leaves it
    assert image.stat().st_ino != old.st_ino

    again, errors = scan_creatives(root, BRAND, previous=first)

    assert again.empty and list(errors["file"]) == ["raw/acme/creatives/a.png"]


def test_a_lowered_pixel_budget_reads_kept_images_again(root: DataRoot) -> None:
    write_image(creatives(root) / "a.png", size=(40, 30))
    first, _ = scan_creatives(root, BRAND)

    again, errors = scan_creatives(root, BRAND, max_megapixels=0.001, previous=first)

    assert again.empty and "over the pixel budget" in errors["reason"].iloc[0]


def test_a_previous_manifest_without_file_identities_reuses_nothing(root: DataRoot) -> None:
    image = write_image(creatives(root) / "a.png")
    first, _ = scan_creatives(root, BRAND)
    _rewrite_keeping_size_and_mtime(image, b"\0" * image.stat().st_size)

    again, errors = scan_creatives(root, BRAND, previous=first.drop(columns=["mtime_ns", "inode"]))

    assert again.empty and len(errors) == 1
