"""Frame extraction speed: `extract_video_frames` (grab/retrieve, atomic JPEGs) against a naive read() loop.

Generates synthetic MP4s in a temporary data root, then times both ways of keeping every Nth frame of them.
Run: `python benchmarks/bench_frames.py [--videos 3 --seconds 30 --fps 25 --size 640x360 --stride 10]`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from creative_assets.layout import DataRoot
from creative_assets.media.frames import extract_video_frames
from creative_assets.media.manifest import scan_creatives

BRAND = "bench"


def make_video(path: Path, frames: int, fps: float, width: int, height: int, seed: int) -> None:
    """A moving gradient with a drifting box and light noise, so the encoder has real work per frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    rng = np.random.default_rng(seed)
    # A few precomputed noise layers keep generation quick; cycling them still changes every frame.
    noise = [rng.integers(0, 12, (height, width, 3), dtype=np.uint8) for _ in range(7)]
    ramp = np.linspace(0, 255, width).astype(np.uint8)[None, :, None]
    base = np.ascontiguousarray(np.broadcast_to(ramp, (height, width, 3)))
    for i in range(frames):
        image = base + np.uint8((3 * i) % 256)  # uint8 arithmetic wraps: a scrolling ramp
        x, y = (7 * i) % (width - 60), (5 * i) % (height - 40)
        image[y : y + 40, x : x + 60] = (30, 200, 90)
        image = cv2.add(image, noise[i % len(noise)])
        writer.write(image)
    writer.release()


def naive_extract(videos: list[Path], out: Path, stride: int, quality: int) -> tuple[int, int]:
    """read() every frame, imwrite every Nth: what a first attempt usually looks like."""
    written = decoded = 0
    for video in videos:
        folder = out / video.name
        folder.mkdir(parents=True, exist_ok=True)
        capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % stride == 0:
                cv2.imwrite(str(folder / f"{index:06d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, quality])
                written += 1
            index += 1
        capture.release()
        decoded += index
    return written, decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT")
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs of each")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    frames_per_video = round(args.seconds * args.fps)

    with tempfile.TemporaryDirectory(prefix="bench_frames_") as tmp:
        root = DataRoot(Path(tmp) / "data")
        started = time.perf_counter()
        videos = []
        for i in range(args.videos):
            path = root.creatives(BRAND) / f"video_{i}.mp4"
            make_video(path, frames_per_video, args.fps, width, height, seed=i)
            videos.append(path)
        print(
            f"generated {args.videos} mp4v videos {width}x{height}, {frames_per_video} frames each "
            f"in {time.perf_counter() - started:.1f} s; OpenCV {cv2.__version__}, threads {cv2.getNumThreads()}"
        )
        manifest, errors = scan_creatives(root, BRAND)
        assert errors.empty, errors

        ours_best = naive_best = float("inf")
        ours_written = naive_written = naive_decoded = 0
        for _ in range(args.repeats):
            shutil.rmtree(root.frames(BRAND), ignore_errors=True)
            result = extract_video_frames(
                root, BRAND, manifest, stride=args.stride, jpeg_quality=args.quality
            )
            assert result.errors.empty and result.videos_extracted == args.videos, result.errors
            ours_best, ours_written = min(ours_best, result.seconds), result.frames_written

            out = Path(tmp) / "naive"
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            naive_written, naive_decoded = naive_extract(videos, out, args.stride, args.quality)
            naive_best = min(naive_best, time.perf_counter() - started)
        assert naive_written == ours_written, (naive_written, ours_written)

        rerun = extract_video_frames(root, BRAND, manifest, stride=args.stride, jpeg_quality=args.quality)
        assert rerun.videos_skipped == args.videos

    def line(name: str, seconds: float) -> str:
        return (
            f"{name:<34} {seconds:7.2f} s  {ours_written / seconds:8.1f} frames written/s  "
            f"{naive_decoded / seconds:8.1f} frames decoded/s"
        )

    print(f"stride {args.stride}, JPEG quality {args.quality}, best of {args.repeats}")
    print(line("extract_video_frames (grab/retrieve)", ours_best))
    print(line("naive read() loop + imwrite", naive_best))
    print(f"speed-up: {naive_best / ours_best:.2f}x")
    print(
        f"re-run with nothing changed: {rerun.seconds * 1000:.1f} ms ({rerun.videos_skipped} videos skipped)"
    )


if __name__ == "__main__":
    main()
