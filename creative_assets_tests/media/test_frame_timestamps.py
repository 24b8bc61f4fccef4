"""timestamp_s is the container's presentation time from the first displayed frame, checked against PyAV/ffprobe.

The videos are written with explicit presentation times (PyAV), or with the ffmpeg command line when it is
installed: variable frame rate with gaps, a stream that starts at 0.5 s, B-frames, 30000/1001 fps.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from creative_assets.layout import DataRoot
from creative_assets.media.frames import FRAME_MANIFEST_NAME, FRAME_MANIFEST_VERSION, extract_video_frames
from creative_assets.media.manifest import scan_creatives

BRAND = "acme"
TOLERANCE_S = 0.001
STRIDE = 10


def vfr_pts_ms(frames: int = 40) -> list[int]:
    """Phone-style VFR: 10 fps, except frames 10–19 which last 0.2 s, so frames 0/10/20/30 sit at 0, 1, 3, 4 s."""
    pts, t = [], 0
    for i in range(frames):
        pts.append(t)
        t += 200 if 10 <= i < 20 else 100
    return pts


def write_with_pts(
    path: Path, pts: list[int], time_base: Fraction, codec: str = "libx264", bframes: int = 0
) -> Path:
    """A video whose frame i has presentation time pts[i] × time_base (exactly as given, gaps and offset kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=1 / time_base if time_base.numerator > 1 else 10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"bf": str(bframes)}
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), (9 * i) % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = p, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def pyav_timestamps(path: Path) -> list[float]:
    """Every decoded frame's presentation time in seconds from the first, as PyAV (libavformat) reports it."""
    with av.open(str(path)) as container:
        times = [float(f.pts * f.time_base) for f in container.decode(container.streams.video[0])]
    return [t - times[0] for t in times]


def pyav_average_fps(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(container.streams.video[0].average_rate)


def extract(root: DataRoot):
    manifest, errors = scan_creatives(root, BRAND)
    assert errors.empty, errors
    result = extract_video_frames(root, BRAND, manifest, stride=STRIDE)
    assert result.errors.empty, result.errors
    return result.frames


def assert_matches(frames, oracle: list[float]) -> None:
    indices = list(frames["frame_index"])
    assert indices == list(range(0, len(oracle), STRIDE))
    expected = [oracle[i] for i in indices]
    errors = [abs(a - b) for a, b in zip(frames["timestamp_s"], expected, strict=True)]
    assert max(errors) <= TOLERANCE_S, (list(frames["timestamp_s"]), expected)


CASES = {
    "vfr_gaps.mp4": (vfr_pts_ms(), Fraction(1, 1000), "libx264", 0),
    "vfr_gaps_bframes.mp4": (vfr_pts_ms(), Fraction(1, 1000), "libx264", 3),
    "start_offset_bframes.mp4": ([500 + 40 * i for i in range(30)], Fraction(1, 1000), "libx264", 2),
    "ntsc_30000_1001_bframes.mp4": (list(range(40)), Fraction(1001, 30000), "libx264", 3),
    "vfr_gaps.mkv": (vfr_pts_ms(), Fraction(1, 1000), "libx264", 2),
    "vfr_gaps.webm": (vfr_pts_ms(), Fraction(1, 1000), "libvpx-vp9", 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_timestamps_are_presentation_times_from_the_first_frame(tmp_path: Path, name: str) -> None:
    root = DataRoot(tmp_path / "data")
    pts, time_base, codec, bframes = CASES[name]
    video = write_with_pts(root.creatives(BRAND) / "videos" / name, pts, time_base, codec, bframes)
    oracle = pyav_timestamps(video)
    # The oracle is what was written: the test files really have the gaps and the offset.
    written = [float(p * time_base) for p in pts]
    assert oracle == pytest.approx([t - written[0] for t in written], abs=1e-9)

    assert_matches(extract(root), oracle)


def test_vfr_file_gets_0_1_3_4_seconds_where_index_over_fps_was_half_a_second_off(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    video = write_with_pts(root.creatives(BRAND) / "phone.mp4", vfr_pts_ms(), Fraction(1, 1000), bframes=3)

    frames = extract(root)

    assert list(frames["frame_index"]) == [0, 10, 20, 30]
    assert list(frames["timestamp_s"]) == [0.0, 1.0, 3.0, 4.0]
    # The old rule, frame_index / average fps, is up to 0.5 s off on this file.
    old = [i / pyav_average_fps(video) for i in frames["frame_index"]]
    assert max(abs(a - b) for a, b in zip(old, [0.0, 1.0, 3.0, 4.0], strict=True)) >= 0.4


def test_frames_published_with_the_old_rule_are_recomputed(tmp_path: Path) -> None:
    root = DataRoot(tmp_path / "data")
    write_with_pts(root.creatives(BRAND) / "phone.mp4", vfr_pts_ms(), Fraction(1, 1000))
    extract(root)
    record_path = root.frames(BRAND) / "phone.mp4" / FRAME_MANIFEST_NAME
    record = json.loads(record_path.read_text(encoding="utf-8"))
    assert record["version"] == FRAME_MANIFEST_VERSION
    # What a run before presentation times left behind: version 1 and index / fps timestamps.
    record["version"] = 1
    for frame in record["frames"]:
        frame["timestamp_s"] = frame["frame_index"] / 7.5
    record_path.write_text(json.dumps(record), encoding="utf-8")

    manifest, _ = scan_creatives(root, BRAND)
    result = extract_video_frames(root, BRAND, manifest, stride=STRIDE)

    assert (result.videos_extracted, result.videos_skipped) == (1, 0)
    assert list(result.frames["timestamp_s"]) == [0.0, 1.0, 3.0, 4.0]
    assert json.loads(record_path.read_text(encoding="utf-8"))["version"] == FRAME_MANIFEST_VERSION


FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(
    not (FFMPEG and FFPROBE),
    reason="ffmpeg/ffprobe not installed (Debian package `ffmpeg`); the PyAV cases above cover the same files",
)


def ffprobe_pts(path: Path) -> list[float]:
    """ffprobe's pts_time of every video frame, rebased to the first one."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_frames", "-show_entries", "frame=pts_time",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    times = [float(f["pts_time"]) for f in json.loads(out)["frames"]]
    return [t - times[0] for t in times]


# 10 fps with frames 10–19 held 0.2 s: frames 0/10/20/30 at 0, 1, 3, 4 s (plus the start offset).
VFR_SETPTS = "setpts='(0.5+N*0.1+gte(N,10)*(min(N,20)-10)*0.1)/TB'"
FFMPEG_CASES = {
    "vfr_offset_bframes.mp4": ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-frames:v", "40",
                               "-vf", VFR_SETPTS, "-fps_mode", "vfr", "-c:v", "libx264", "-bf", "3"],
    "ntsc_bframes.mp4": ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=30000/1001", "-frames:v", "40",
                         "-c:v", "libx264", "-bf", "3"],
}  # fmt: skip


@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(FFMPEG_CASES))
def test_timestamps_match_ffprobe_pts_time(tmp_path: Path, name: str) -> None:
    root = DataRoot(tmp_path / "data")
    video = root.creatives(BRAND) / name
    video.parent.mkdir(parents=True)
    subprocess.run([FFMPEG, "-v", "error", "-y", *FFMPEG_CASES[name], str(video)], check=True)

    assert_matches(extract(root), ffprobe_pts(video))
