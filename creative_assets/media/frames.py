"""Video frames: every Nth decoded frame of each video, saved as JPEG under `frames/<brand>/<creative_id>/`.

Publication protocol (what makes a re-run cheap and a killed run harmless):

* every JPEG is written atomically, so no half-written frame ever has a frame's name;
* a video's `_frames.json` (source sha256, stride, JPEG quality, the frames) is written atomically and LAST,
  and is removed before a video is re-extracted: a folder without it is unfinished and is redone next run;
* a re-run skips a video whose `_frames.json` matches version + sha256 + stride + quality and whose frames all
  exist; after a re-extraction, frames the new settings no longer keep are deleted.

`timestamp_s` is the frame's presentation time (container PTS, as OpenCV's `CAP_PROP_POS_MSEC` reports it right
after `grab()`) minus that of frame 0, the first displayed frame: right on variable-frame-rate footage, streams
that start late, B-frames and 30000/1001 rates, where `frame_index / fps` is not. A container without usable
presentation times (timestamps that do not increase) falls back to `frame_index / fps` for the whole video.

A video that stops decoding before the container's frame count (truncated or corrupt) is an error row. Its
frames are deleted and it gets no `_frames.json` and no frame rows, so no partial set is ever published and
the next run tries it again.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from creative_assets.atomic import atomic_write_bytes, atomic_write_json, remove_stale_temporaries
from creative_assets.layout import DataRoot, PathEscapeError
from creative_assets.media.manifest import errors_table

FRAME_COLUMNS = ["brand", "creative_id", "frame_index", "timestamp_s", "path", "width", "height"]
FRAME_DTYPES = {
    "brand": "string",
    "creative_id": "string",
    "frame_index": "int64",
    "timestamp_s": "float64",
    "path": "string",
    "width": "int64",
    "height": "int64",
}
FRAME_MANIFEST_NAME = "_frames.json"
# 2: timestamp_s from presentation times (1 was frame_index / fps); a `_frames.json` of another version is
# re-extracted on the next run, so old frame rows are recomputed.
FRAME_MANIFEST_VERSION = 2
STAGE = "frames"
# Containers that estimate the frame count from duration × fps (mkv, webm) can be off by a frame or two;
# losing up to 1% of the tail also costs the frame table nothing that matters.
TRUNCATION_TOLERANCE = 0.01

_WRITER_THREADS = 2
_MAX_PENDING_FRAMES = 2 * _WRITER_THREADS
_FRAME_NAME = re.compile(r"^\d{6}\.jpg$")


@dataclass
class FrameExtraction:
    """What one extraction run produced: the brand's frame table, its errors, and counters for metadata."""

    frames: pd.DataFrame
    errors: pd.DataFrame
    videos_extracted: int
    videos_skipped: int
    frames_written: int
    seconds: float


class _VideoFailed(Exception):
    """A video that yields no published frames; the message is the errors-table reason."""


def frames_table(rows: list[dict] | None = None) -> pd.DataFrame:
    """A frames table with FRAME_COLUMNS and their dtypes (empty when `rows` is None)."""
    return pd.DataFrame(rows or [], columns=FRAME_COLUMNS).astype(FRAME_DTYPES)


def extract_video_frames(
    root: DataRoot,
    brand: str,
    manifest: pd.DataFrame,
    stride: int,
    jpeg_quality: int = 95,
    progress: Callable[[int, int], None] | None = None,
) -> FrameExtraction:
    """Save frames 0, stride, 2·stride, … of every video in `manifest`; `progress(done, total)` per video."""
    import cv2

    if int(stride) < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    if not 0 <= int(jpeg_quality) <= 100:
        raise ValueError(f"jpeg_quality must be within 0..100, got {jpeg_quality!r}")
    stride, jpeg_quality = int(stride), int(jpeg_quality)
    started = time.perf_counter()

    videos = manifest[manifest["media_type"] == "video"].sort_values("creative_id", kind="stable")
    rows: list[dict] = []
    errors: list[dict] = []
    extracted = skipped = written = 0
    total = len(videos)
    for done, video in enumerate(videos.itertuples(index=False), start=1):
        creative_id = str(video.creative_id)
        try:
            frame_dir, rel_dir = _frame_dir(root, brand, creative_id)
            sha256 = "" if pd.isna(video.sha256) else str(video.sha256)
            published = _published_frames(root, brand, creative_id, frame_dir, sha256, stride, jpeg_quality)
            if published is not None:
                skipped += 1
                kept = published
            else:
                fps_hint = None if pd.isna(video.fps) else float(video.fps)
                kept = _extract(
                    root,
                    brand,
                    creative_id,
                    str(video.path),
                    frame_dir,
                    fps_hint,
                    sha256,
                    stride,
                    jpeg_quality,
                )
                extracted += 1
                written += len(kept)
            rows.extend(
                {
                    "brand": brand,
                    "creative_id": creative_id,
                    **frame,
                    "path": f"{rel_dir}/{frame['frame_index']:06d}.jpg",
                }
                for frame in kept
            )
        except (_VideoFailed, OSError, cv2.error) as exc:
            errors.append(
                {"brand": brand, "file": str(video.path), "record": "", "stage": STAGE, "reason": str(exc)}
            )
        if progress is not None:
            progress(done, total)

    return FrameExtraction(
        frames=frames_table(rows),
        errors=errors_table(errors),
        videos_extracted=extracted,
        videos_skipped=skipped,
        frames_written=written,
        seconds=time.perf_counter() - started,
    )


def _frame_dir(root: DataRoot, brand: str, creative_id: str) -> tuple[Path, str]:
    """The video's frame folder and its posix path under the root; ids that could climb out are refused."""
    parts = PurePosixPath(creative_id).parts
    if not parts or creative_id.startswith("/") or any(p in ("..", ".") for p in parts):
        raise _VideoFailed(f"invalid creative_id {creative_id!r}")
    frame_dir = root.frames(brand) / creative_id
    try:
        root.relative(frame_dir)
    except PathEscapeError:
        raise _VideoFailed("frame folder points outside the data root") from None
    return frame_dir, frame_dir.relative_to(root.root).as_posix()


def _published_frames(
    root: DataRoot, brand: str, creative_id: str, frame_dir: Path, sha256: str, stride: int, quality: int
) -> list[dict] | None:
    """The frames recorded by a matching, complete `_frames.json`, or None when the video must be redone."""
    if not sha256:
        return None
    try:
        record = json.loads((frame_dir / FRAME_MANIFEST_NAME).read_text(encoding="utf-8"))
        if (
            record.get("version") != FRAME_MANIFEST_VERSION
            or record.get("sha256") != sha256
            or record.get("stride") != stride
            or record.get("jpeg_quality") != quality
        ):
            return None
        frames = [
            {
                "frame_index": int(f["frame_index"]),
                "timestamp_s": float(f["timestamp_s"]),
                "width": int(f["width"]),
                "height": int(f["height"]),
            }
            for f in record["frames"]
        ]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if not frames or not all(root.frame_path(brand, creative_id, f["frame_index"]).is_file() for f in frames):
        return None
    return frames


def _extract(
    root: DataRoot,
    brand: str,
    creative_id: str,
    rel_path: str,
    frame_dir: Path,
    fps_hint: float | None,
    sha256: str,
    stride: int,
    quality: int,
) -> list[dict]:
    """Decode the video once, write every kept frame, then publish `_frames.json`."""
    try:
        source = root.resolve_inside(rel_path)
    except PathEscapeError:
        raise _VideoFailed("video path points outside the data root") from None
    manifest_path = frame_dir / FRAME_MANIFEST_NAME
    try:
        # The old publication stops being true the moment the first frame is overwritten.
        manifest_path.unlink(missing_ok=True)
        remove_stale_temporaries(frame_dir)
    except OSError as exc:
        raise _VideoFailed(f"cannot prepare frame folder: {exc}") from None

    try:
        kept, decoded, expected, fps, last_s = _decode_and_write(
            root, brand, creative_id, source, fps_hint, stride, quality
        )
    except _VideoFailed:
        _remove_frames(frame_dir, keep=set())
        raise
    allowed_missing = max(1, math.floor(expected * TRUNCATION_TOLERANCE))
    # mkv/webm estimate the count as duration × average fps, which a variable-frame-rate video misses by
    # far: a video whose last frame is shown until the end of that duration is complete, whatever the count.
    reached_end = expected > 0 and last_s + 1.0 / fps >= (expected - allowed_missing) / fps
    if decoded == 0 or (expected > 0 and decoded < expected - allowed_missing and not reached_end):
        _remove_frames(frame_dir, keep=set())
        total = expected if expected > 0 else "unknown"
        raise _VideoFailed(f"decoded {decoded} of {total} frames: truncated or corrupt")

    try:
        _remove_frames(frame_dir, keep={f"{f['frame_index']:06d}.jpg" for f in kept})
        atomic_write_json(
            manifest_path,
            {
                "version": FRAME_MANIFEST_VERSION,
                "creative_id": creative_id,
                "sha256": sha256,
                "stride": stride,
                "jpeg_quality": quality,
                "fps": fps,
                "frames_decoded": decoded,
                "container_frame_count": expected,
                "frames": kept,
            },
        )
    except OSError as exc:
        raise _VideoFailed(f"cannot publish frames: {exc}") from None
    return kept


def _decode_and_write(
    root: DataRoot,
    brand: str,
    creative_id: str,
    source: Path,
    fps_hint: float | None,
    stride: int,
    quality: int,
) -> tuple[list[dict], int, int, float, float]:
    """Walk the video in decode order; kept frames are converted and saved, the rest only grabbed.

    Returns the kept frames, the number decoded, the container's frame count, the fps, and the presentation
    time in seconds of the last decoded frame (from the stream's start, -inf when none was decoded).
    """
    import cv2

    capture = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            raise _VideoFailed("OpenCV cannot open the video")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(fps) and fps > 0):
            fps = fps_hint if fps_hint and math.isfinite(fps_hint) and fps_hint > 0 else 0.0
        if fps <= 0:
            raise _VideoFailed("unknown frame rate")
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        kept: list[dict[str, Any]] = []
        first_ms: float | None = None
        last_ms = -math.inf
        pending: deque[Future[None]] = deque()
        index = 0
        # JPEG encoding and the fsynced write run beside decoding (OpenCV releases the GIL); the queue is
        # bounded so memory stays a few frames whatever the video's length.
        with ThreadPoolExecutor(max_workers=_WRITER_THREADS) as writers:
            try:
                # grab() decodes without the colour conversion; only kept frames pay for retrieve().
                while capture.grab():
                    if index == 0:
                        first_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                    if index % stride == 0:
                        ok, image = capture.retrieve()
                        if not ok or image is None:
                            raise _VideoFailed(f"frame {index} decoded but could not be converted")
                        target = root.frame_path(brand, creative_id, index)
                        pending.append(writers.submit(_save_jpeg, target, image, params, index))
                        height, width = image.shape[:2]
                        kept.append(
                            {
                                "frame_index": index,
                                "timestamp_s": capture.get(cv2.CAP_PROP_POS_MSEC),
                                "width": width,
                                "height": height,
                            }
                        )
                        while len(pending) > _MAX_PENDING_FRAMES:
                            pending.popleft().result()
                    last_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                    index += 1
                while pending:
                    pending.popleft().result()
            finally:
                # No write may land after the caller starts cleaning up a failed video.
                wait(pending)
    finally:
        capture.release()
    _rebase_timestamps(kept, first_ms, fps)
    last_s = last_ms / 1000.0 if math.isfinite(last_ms) else -math.inf
    return kept, index, expected, fps, last_s


def _rebase_timestamps(kept: list[dict[str, Any]], first_ms: float | None, fps: float) -> None:
    """Turn the kept frames' raw PTS milliseconds into seconds from frame 0, in place.

    Without usable presentation times (missing, not finite, or not increasing) every frame of the video gets
    `frame_index / fps` instead, so one video never mixes the two clocks.
    """
    raw = [f["timestamp_s"] for f in kept]
    usable = (
        first_ms is not None
        and all(math.isfinite(v) for v in [first_ms, *raw])
        and all(later > earlier for earlier, later in zip(raw, raw[1:], strict=False))
    )
    for frame, ms in zip(kept, raw, strict=True):
        seconds = (ms - first_ms) / 1000.0 if usable else frame["frame_index"] / fps
        frame["timestamp_s"] = round(seconds, 6)


def _save_jpeg(target: Path, image: np.ndarray, params: list[int], index: int) -> None:
    """Encode one frame and write it atomically."""
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, params)
    if not ok:
        raise _VideoFailed(f"frame {index} could not be encoded as JPEG")
    try:
        atomic_write_bytes(target, encoded.tobytes())
    except OSError as exc:
        raise _VideoFailed(f"cannot write frame {index}: {exc}") from None


def _remove_frames(frame_dir: Path, keep: set[str]) -> None:
    """Delete frame JPEGs in `frame_dir` whose names are not in `keep` (nothing else is touched)."""
    if not frame_dir.is_dir():
        return
    for path in frame_dir.iterdir():
        if _FRAME_NAME.match(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)
