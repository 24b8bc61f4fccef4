"""extract_video_frames on real mp4 files: frame choice, PyAV agreement, idempotence and failure handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest

from creative_assets.layout import DataRoot
from creative_assets.media.frames import FRAME_COLUMNS, FRAME_MANIFEST_NAME, extract_video_frames
from creative_assets.media.manifest import ERROR_COLUMNS, scan_creatives, sha256_file
from creative_assets_tests.support.media_builders import write_image, write_video

BRAND = "acme"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data")


def add_video(root: DataRoot, creative_id: str, frames: int = 25, fps: float = 10.0) -> Path:
    return write_video(root.creatives(BRAND) / creative_id, frames=frames, fps=fps)


def write_truncated_video(path: Path, frames: int = 60) -> Path:
    """An mp4 with its index first (faststart) cut in half: it opens and claims `frames` but decodes fewer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    whole = path.with_name("whole-" + path.name)
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), (4 * i) % 256, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def frame_files(root: DataRoot, creative_id: str) -> list[str]:
    return sorted(p.name for p in (root.frames(BRAND) / creative_id).glob("*.jpg"))


def extract(root: DataRoot, stride: int = 10, **kwargs):
    manifest, errors = scan_creatives(root, BRAND)
    assert errors.empty, errors
    return extract_video_frames(root, BRAND, manifest, stride=stride, **kwargs)


def test_every_nth_frame_is_saved_with_index_timestamp_and_path(root: DataRoot) -> None:
    add_video(root, "videos/spot.mp4", frames=25, fps=10.0)

    result = extract(root, stride=10)

    assert result.errors.empty
    assert list(result.frames["frame_index"]) == [0, 10, 20]
    assert list(result.frames["timestamp_s"]) == [0.0, 1.0, 2.0]
    assert list(result.frames["path"]) == [
        "frames/acme/videos/spot.mp4/000000.jpg",
        "frames/acme/videos/spot.mp4/000010.jpg",
        "frames/acme/videos/spot.mp4/000020.jpg",
    ]
    assert set(result.frames["width"]) == {64} and set(result.frames["height"]) == {48}
    assert all((root.root / p).is_file() for p in result.frames["path"])
    assert (result.videos_extracted, result.videos_skipped, result.frames_written) == (1, 0, 3)


def test_saved_frames_equal_pyav_frames_at_the_same_decode_index(root: DataRoot) -> None:
    video = add_video(root, "spot.mp4", frames=25)
    stride = 4

    result = extract(root, stride=stride)

    with av.open(str(video)) as container:
        reference = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert list(result.frames["frame_index"]) == list(range(0, len(reference), stride))
    for index, path in zip(result.frames["frame_index"], result.frames["path"], strict=True):
        saved = cv2.imread(str(root.root / path)).astype(np.int16)
        # Neighbouring frames differ by 9 grey levels, so a frame off by one would fail this bound.
        assert np.abs(saved - reference[index]).mean() < 3, index


def test_frame_and_error_tables_have_documented_columns_and_dtypes(root: DataRoot) -> None:
    add_video(root, "a.mp4")

    result = extract(root)

    assert list(result.frames.columns) == FRAME_COLUMNS
    assert result.frames.dtypes.astype(str).to_dict() == {
        "brand": "string",
        "creative_id": "string",
        "frame_index": "int64",
        "timestamp_s": "float64",
        "path": "string",
        "width": "int64",
        "height": "int64",
    }
    assert list(result.errors.columns) == ERROR_COLUMNS
    assert set(result.errors.dtypes.astype(str)) == {"string"}


def test_only_video_rows_are_processed_and_no_videos_gives_empty_typed_table(root: DataRoot) -> None:
    write_image(root.creatives(BRAND) / "still.jpg")

    result = extract(root)

    assert result.frames.empty and result.errors.empty
    assert list(result.frames.columns) == FRAME_COLUMNS
    assert str(result.frames["frame_index"].dtype) == "int64"
    assert not root.frames(BRAND).exists()


def test_rerun_skips_unchanged_videos_without_rewriting_frames(root: DataRoot) -> None:
    add_video(root, "a.mp4")
    add_video(root, "b.mp4", frames=12)
    first = extract(root)
    stamps = {p: (root.root / p).stat().st_mtime_ns for p in first.frames["path"]}

    second = extract(root)

    assert (second.videos_extracted, second.videos_skipped, second.frames_written) == (0, 2, 0)
    pd.testing.assert_frame_equal(second.frames, first.frames)
    assert {p: (root.root / p).stat().st_mtime_ns for p in second.frames["path"]} == stamps


def test_changed_stride_reextracts_and_removes_stale_frames(root: DataRoot) -> None:
    add_video(root, "a.mp4", frames=25)
    extract(root, stride=4)

    result = extract(root, stride=10)

    assert (result.videos_extracted, result.videos_skipped) == (1, 0)
    assert frame_files(root, "a.mp4") == ["000000.jpg", "000010.jpg", "000020.jpg"]
    assert json.loads((root.frames(BRAND) / "a.mp4" / FRAME_MANIFEST_NAME).read_text())["stride"] == 10


def test_changed_video_content_is_reextracted(root: DataRoot) -> None:
    add_video(root, "a.mp4", frames=25)
    extract(root, stride=10)
    add_video(root, "a.mp4", frames=15)

    result = extract(root, stride=10)

    assert result.videos_extracted == 1
    assert list(result.frames["frame_index"]) == [0, 10]
    assert frame_files(root, "a.mp4") == ["000000.jpg", "000010.jpg"]


def test_changed_jpeg_quality_reextracts(root: DataRoot) -> None:
    add_video(root, "a.mp4")
    extract(root, jpeg_quality=95)

    result = extract(root, jpeg_quality=60)

    assert (result.videos_extracted, result.videos_skipped) == (1, 0)


def test_frame_manifest_records_source_hash_settings_and_frames(root: DataRoot) -> None:
    add_video(root, "a.mp4", frames=25)
    manifest, _ = scan_creatives(root, BRAND)

    extract_video_frames(root, BRAND, manifest, stride=10, jpeg_quality=90)

    record = json.loads((root.frames(BRAND) / "a.mp4" / FRAME_MANIFEST_NAME).read_text())
    assert record["sha256"] == manifest.loc[0, "sha256"]
    assert (record["stride"], record["jpeg_quality"], record["frames_decoded"]) == (10, 90, 25)
    assert [f["frame_index"] for f in record["frames"]] == [0, 10, 20]
    assert [f["timestamp_s"] for f in record["frames"]] == [0.0, 1.0, 2.0]


def test_truncated_video_is_an_error_row_with_no_frames_or_manifest(root: DataRoot) -> None:
    write_truncated_video(root.creatives(BRAND) / "cut.mp4", frames=60)
    add_video(root, "fine.mp4")
    manifest, scan_errors = scan_creatives(root, BRAND)
    assert set(manifest["creative_id"]) == {"cut.mp4", "fine.mp4"} and scan_errors.empty

    result = extract_video_frames(root, BRAND, manifest, stride=5)

    assert set(result.frames["creative_id"]) == {"fine.mp4"}
    assert len(result.errors) == 1
    error = result.errors.iloc[0]
    assert (error["file"], error["stage"]) == ("raw/acme/creatives/cut.mp4", "frames")
    assert error["reason"].startswith("decoded ") and error["reason"].endswith(
        " of 60 frames: truncated or corrupt"
    )
    assert frame_files(root, "cut.mp4") == []
    assert not (root.frames(BRAND) / "cut.mp4" / FRAME_MANIFEST_NAME).exists()
    assert result.videos_extracted == 1


def test_truncated_video_is_retried_on_the_next_run(root: DataRoot) -> None:
    write_truncated_video(root.creatives(BRAND) / "cut.mp4")
    manifest, _ = scan_creatives(root, BRAND)
    extract_video_frames(root, BRAND, manifest, stride=5)

    again = extract_video_frames(root, BRAND, manifest, stride=5)

    assert again.videos_skipped == 0 and len(again.errors) == 1


def test_unopenable_video_is_an_error_row(root: DataRoot) -> None:
    video = add_video(root, "a.mp4")
    manifest, _ = scan_creatives(root, BRAND)
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # broken after the scan

    result = extract_video_frames(root, BRAND, manifest, stride=10)

    assert result.frames.empty
    assert list(result.errors["reason"]) == ["OpenCV cannot open the video"]


def test_manifest_path_outside_the_root_is_an_error_row(root: DataRoot, tmp_path: Path) -> None:
    write_video(tmp_path / "outside.mp4")
    add_video(root, "a.mp4")
    manifest, _ = scan_creatives(root, BRAND)
    manifest.loc[0, "path"] = "../outside.mp4"

    result = extract_video_frames(root, BRAND, manifest, stride=10)

    assert result.frames.empty
    assert list(result.errors["reason"]) == ["video path points outside the data root"]


def test_unfinished_folder_with_leftover_temporaries_is_redone(root: DataRoot) -> None:
    add_video(root, "a.mp4")
    extract(root)
    folder = root.frames(BRAND) / "a.mp4"
    # What a run killed mid-video leaves: frames without a manifest, one of them garbage, a temporary.
    (folder / FRAME_MANIFEST_NAME).unlink()
    (folder / "000010.jpg").write_bytes(b"half a jpeg")
    (folder / ".000020.jpg.x1y2.tmp").write_bytes(b"partial")

    result = extract(root)

    assert (result.videos_extracted, result.videos_skipped) == (1, 0)
    assert cv2.imread(str(folder / "000010.jpg")) is not None
    assert not list(folder.glob(".*.tmp"))
    assert (folder / FRAME_MANIFEST_NAME).is_file()


def test_missing_frame_file_triggers_reextraction(root: DataRoot) -> None:
    add_video(root, "a.mp4")
    extract(root)
    (root.frames(BRAND) / "a.mp4" / "000010.jpg").unlink()

    result = extract(root)

    assert result.videos_extracted == 1
    assert frame_files(root, "a.mp4") == ["000000.jpg", "000010.jpg", "000020.jpg"]


def test_unparseable_frame_manifest_triggers_reextraction(root: DataRoot) -> None:
    add_video(root, "a.mp4")
    extract(root)
    (root.frames(BRAND) / "a.mp4" / FRAME_MANIFEST_NAME).write_text("{not json")

    result = extract(root)

    assert (result.videos_extracted, result.videos_skipped) == (1, 0)


def test_progress_is_reported_once_per_video(root: DataRoot) -> None:
    add_video(root, "a.mp4")
    add_video(root, "b.mp4")
    write_image(root.creatives(BRAND) / "c.jpg")
    calls: list[tuple[int, int]] = []

    extract(root, progress=lambda done, total: calls.append((done, total)))

    assert calls == [(1, 2), (2, 2)]


@pytest.mark.parametrize("stride", [0, -3])
def test_stride_below_one_is_rejected(root: DataRoot, stride: int) -> None:
    root.creatives(BRAND).mkdir(parents=True)
    manifest, _ = scan_creatives(root, BRAND)

    with pytest.raises(ValueError, match="stride"):
        extract_video_frames(root, BRAND, manifest, stride=stride)


def _frame_bytes(root: DataRoot) -> dict[str, str]:
    folder = root.frames(BRAND)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*.jpg"))}


def test_extraction_killed_mid_video_resumes_to_the_uninterrupted_frames(tmp_path: Path) -> None:
    uninterrupted, killed = DataRoot(tmp_path / "whole"), DataRoot(tmp_path / "killed")
    for r in (uninterrupted, killed):
        for name in ("a.mp4", "b.mp4", "c.mp4"):
            write_video(r.creatives(BRAND) / name, frames=120, size=(320, 240))
    whole = extract(uninterrupted, stride=1)

    script = Path(__file__).with_name("frames_in_subprocess.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, str(script), str(killed.root), "1"], cwd=REPO, env=env)
    started = killed.frames(BRAND) / "b.mp4" / "000000.jpg"
    try:
        while not started.is_file() and child.poll() is None:
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert started.is_file(), "the extraction ended before the kill"
    assert not (killed.frames(BRAND) / "c.mp4" / FRAME_MANIFEST_NAME).exists()

    resumed = extract(killed, stride=1)
    assert resumed.videos_skipped >= 1 and resumed.videos_extracted >= 2
    pd.testing.assert_frame_equal(resumed.frames, whole.frames)
    assert _frame_bytes(killed) == _frame_bytes(uninterrupted)
    leftovers = [p.name for p in killed.frames(BRAND).rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []
