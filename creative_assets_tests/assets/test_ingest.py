"""creative_manifest and video_frames materialised with in-memory IO, on a tiny generated data root."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from creative_assets.assets.ingest import creative_manifest, video_frames
from creative_assets.tables.warehouse import write_part
from creative_assets_tests.support.asset_runs import (
    BRAND,
    brand_context,
    instance_with_brands,
    invoke,
    smoke_settings,
    tiny_data_root,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_data_root(tmp_path_factory.mktemp("ingest") / "data")


def _files(root: Path, suffixes: set[str]) -> set[str]:
    creatives = root / "raw" / BRAND / "creatives"
    return {p.relative_to(creatives).as_posix() for p in creatives.rglob("*") if p.suffix.lower() in suffixes}


def test_manifest_and_frames_materialise_in_memory_with_passing_checks(root: Path) -> None:
    result = dg.materialize_to_memory(
        [creative_manifest, video_frames],
        partition_key=BRAND,
        instance=instance_with_brands(BRAND),
        resources={"settings": smoke_settings(root)},
    )
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"no_unconfirmed_removals": True, "frames_for_every_video": True}

    manifest = result.asset_value("creative_manifest")
    images, videos = _files(root, IMAGE_SUFFIXES), _files(root, VIDEO_SUFFIXES)
    assert set(manifest["creative_id"]) == images | videos
    (materialisation,) = [
        m
        for m in result.asset_materializations_for_node("creative_manifest")
        if m.asset_key.path == ["creative_manifest"]
    ]
    shown = {
        k: v.value for k, v in materialisation.metadata.items() if k in ("creatives", "images", "videos")
    }
    assert shown == {"creatives": len(images | videos), "images": len(images), "videos": len(videos)}
    # the in-memory IO manager kept the table: nothing under warehouse/creative_manifest
    assert not (root / "warehouse" / "creative_manifest").exists()

    frames = result.asset_value("video_frames")
    # a 2 s video at 10 fps has frames 0…19; the default stride 10 keeps 0 and 10
    assert sorted(frames.groupby("creative_id")["frame_index"].apply(list).to_dict().items()) == [
        (v, [0, 10]) for v in sorted(videos)
    ]


def test_a_manifest_without_videos_gives_no_frames_and_a_passing_check(root: Path) -> None:
    manifest = _manifest_run(root).asset_value("creative_manifest")
    stills = manifest[manifest["media_type"] == "image"].reset_index(drop=True)

    run = invoke(video_frames, brand_context(), settings=smoke_settings(root), creative_manifest=stills)

    assert isinstance(run.value, pd.DataFrame) and run.value.empty
    assert run.meta("frames") == 0
    check = run.checks["frames_for_every_video"]
    assert check.passed and check.metadata["readable_videos"].value == 0


def _manifest_run(root: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize_to_memory(
        [creative_manifest],
        partition_key=BRAND,
        instance=instance_with_brands(BRAND),
        resources={"settings": smoke_settings(root)},
        raise_on_error=False,
    )


def test_a_vanished_majority_fails_the_blocking_removal_check(tmp_path: Path) -> None:
    data = tiny_data_root(tmp_path / "data")
    first = _manifest_run(data)
    (check,) = first.get_asset_check_evaluations()
    assert check.passed
    # the check compares with the committed manifest, which the warehouse IO manager would have written
    manifest = first.asset_value("creative_manifest")
    write_part(data / "warehouse" / "creative_manifest" / f"brand={BRAND}" / "part-00000.parquet", manifest)
    creatives = data / "raw" / BRAND / "creatives"
    gone = sorted(_files(data, IMAGE_SUFFIXES))[:12]
    for creative_id in gone:
        (creatives / creative_id).unlink()

    (check,) = _manifest_run(data).get_asset_check_evaluations()

    assert not check.passed
    assert check.metadata["unconfirmed"].value == len(gone)
    assert check.metadata["removed_examples"].value.split(", ") == gone


def test_a_rerun_keeps_unchanged_rows_and_rehash_all_reads_every_file_again(tmp_path: Path) -> None:
    data = tiny_data_root(tmp_path / "data")
    first = _manifest_run(data).asset_value("creative_manifest")
    write_part(data / "warehouse" / "creative_manifest" / f"brand={BRAND}" / "part-00000.parquet", first)
    image = data / "raw" / BRAND / "creatives" / sorted(_files(data, IMAGE_SUFFIXES))[0]
    before = image.stat()
    # Same size, same inode, old mtime put back: only reading the bytes could notice the change.
    with open(image, "r+b") as f:
        f.write(b"\0" * before.st_size)
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))

    kept = _manifest_run(data).asset_value("creative_manifest")
    forced = dg.materialize_to_memory(
        [creative_manifest],
        partition_key=BRAND,
        instance=instance_with_brands(BRAND),
        resources={"settings": smoke_settings(data, media={"rehash_all": True})},
    ).asset_value("creative_manifest")

    pd.testing.assert_frame_equal(kept, first)
    creative_id = image.relative_to(data / "raw" / BRAND / "creatives").as_posix()
    assert set(first["creative_id"]) - set(forced["creative_id"]) == {creative_id}


def test_a_removed_video_loses_its_frames_rows_and_its_frame_folder(tmp_path: Path) -> None:
    from creative_assets.definitions import local_resources

    data = tiny_data_root(tmp_path / "data")
    instance = instance_with_brands(BRAND)

    def ingest() -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [creative_manifest, video_frames],
            partition_key=BRAND,
            instance=instance,
            resources=local_resources(str(data), "smoke"),
        )

    first = ingest()
    (video,) = sorted(_files(data, VIDEO_SUFFIXES))
    frame_folder = data / "frames" / BRAND / video
    assert set(first.asset_value("video_frames")["creative_id"]) == {video}
    assert any(frame_folder.glob("*.jpg"))

    (data / "raw" / BRAND / "creatives" / video).unlink()  # one of 17 creatives: within the removal limit
    second = ingest()

    assert second.asset_value("video_frames").empty
    assert not frame_folder.exists()
    assert not (data / "frames" / BRAND / video.split("/")[0]).exists()  # emptied parent folders go too
    (frames_event,) = second.asset_materializations_for_node("video_frames")
    assert frames_event.metadata["removed_videos_pruned"].value == 1
