"""The creative manifest: every image and video of a brand with its size, timing and content hash.

Images are decoded from bytes within the pixel budget (`media.decode`); videos are probed by OpenCV, whose
file name is known to be valid UTF-8 by then. Anything that cannot be listed — an unsupported extension, an
empty, corrupt, truncated or oversized file, a file name that is not UTF-8, a broken symlink or one that leaves
the data root — becomes a row of the errors table instead of stopping the scan. Hidden files and folders
(names starting with ".") are skipped silently: they are tool droppings such as `.DS_Store`, not creatives.

Absence is not removal: a missing or unreadable `creatives/` folder raises `CreativesFolderError` instead of
returning an empty manifest, which downstream stages would read as "every creative was removed".

Incremental: given the previous manifest, a file whose size, modification time (ns) and inode are all
unchanged keeps its previous row instead of being decoded and hashed again — a no-change scan of 20k
creatives is then a directory walk and one `stat` per file. Files rewritten in place keep their inode but
change size or mtime; files replaced or restored from a copy get a new inode. A tool that rewrites content
and then sets the old mtime back on the same inode defeats this: `media.rehash_all` forces a full scan.
Errors rows are never reused: a file that failed is probed again on every scan.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from creative_assets.checksums import sha256_file  # noqa: F401  (part of this module's API)
from creative_assets.layout import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, DataRoot, PathEscapeError
from creative_assets.media.decode import DEFAULT_MAX_MEGAPIXELS, ImageDecodeError, budget_pixels, decode_file

MANIFEST_COLUMNS = [
    "brand",
    "creative_id",
    "media_type",
    "path",
    "width",
    "height",
    "fps",
    "frame_count",
    "duration_s",
    "bytes",
    "sha256",
    "mtime_ns",
    "inode",
]
MANIFEST_DTYPES = {
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
    "mtime_ns": "int64",  # st_mtime_ns and st_ino when the row was computed: what a rescan compares
    "inode": "int64",
}
# What must be equal for a file to keep its previous row.
IDENTITY = ("bytes", "mtime_ns", "inode")
ERROR_COLUMNS = ["brand", "file", "record", "stage", "reason"]
ERROR_DTYPES = dict.fromkeys(ERROR_COLUMNS, "string")

STAGE = "manifest"
NOT_UTF8 = "the file name is not valid UTF-8; rename the file"


class CreativesFolderError(RuntimeError):
    """A brand's `creatives/` folder that is missing, unreadable or not a folder: never read as empty."""


def _printable(name: str) -> str:
    """A file name as text, with bytes that are not UTF-8 shown as `\\xNN` escapes."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def manifest_table(rows: list[dict] | None = None) -> pd.DataFrame:
    """A manifest table with MANIFEST_COLUMNS and their dtypes (empty when `rows` is None)."""
    return _typed(rows or [], MANIFEST_COLUMNS, MANIFEST_DTYPES)


def errors_table(rows: list[dict] | None = None) -> pd.DataFrame:
    """An errors table with ERROR_COLUMNS, all strings (empty when `rows` is None)."""
    return _typed(rows or [], ERROR_COLUMNS, ERROR_DTYPES)


def _typed(rows: list[dict], columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns).astype(dtypes)


@dataclass(frozen=True)
class _Found:
    """One file met by the walk: where it sits under the data root and what the walk knows of it."""

    creative_id: str
    rel_path: str
    problem: str | None = None


def _walk(root: DataRoot, creatives: Path, base_rel: str) -> list[_Found]:
    """Every non-hidden file below `creatives`; symlinks that leave the root are reported, not followed."""
    found: list[_Found] = []
    visited: set[Path] = set()

    def visit(folder: Path, prefix: str) -> None:
        real = folder.resolve()
        if real in visited:  # a symlinked folder that loops back
            return
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            found.append(
                _Found(prefix.rstrip("/"), f"{base_rel}/{prefix}".rstrip("/"), f"unreadable folder: {exc}")
            )
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            creative_id = f"{prefix}{entry.name}"
            rel_path = f"{base_rel}/{creative_id}"
            if not _is_utf8(entry.name):
                # Not a valid creative_id (table strings are UTF-8); the name is shown escaped.
                found.append(_Found(_printable(creative_id), _printable(rel_path), NOT_UTF8))
                continue
            if entry.is_symlink():
                if not os.path.exists(entry.path):
                    found.append(
                        _Found(
                            creative_id, rel_path, "broken symlink: its target does not exist (not mounted?)"
                        )
                    )
                    continue
                try:
                    root.resolve_inside(rel_path)
                except PathEscapeError:
                    found.append(_Found(creative_id, rel_path, "symlink points outside the data root"))
                    continue
            if entry.is_dir():
                visit(Path(entry.path), f"{creative_id}/")
            elif entry.is_file():
                found.append(_Found(creative_id, rel_path))
            else:
                found.append(_Found(creative_id, rel_path, "not a regular file"))

    visit(creatives, "")
    return sorted(found, key=lambda f: f.creative_id)


def check_creatives_folder(root: DataRoot, brand: str) -> Path:
    """The brand's `creatives/` folder; CreativesFolderError naming the path if it cannot be listed."""
    creatives = root.creatives(brand)
    base_rel = creatives.relative_to(root.root).as_posix()
    hint = (
        "a missing folder is never read as 'no creatives' (is the share mounted, is CREATIVE_ASSETS_DATA "
        "right?); to remove every creative of the brand, leave the folder in place and empty"
    )
    if creatives.is_symlink() and not creatives.exists():
        raise CreativesFolderError(f"{base_rel} ({creatives}) is a broken symlink; {hint}")
    if not creatives.exists():
        raise CreativesFolderError(f"{base_rel} ({creatives}) does not exist; {hint}")
    try:
        root.resolve_inside(base_rel)
    except PathEscapeError:
        raise CreativesFolderError(f"{base_rel} ({creatives}) points outside the data root") from None
    if not creatives.is_dir():
        raise CreativesFolderError(f"{base_rel} ({creatives}) is not a folder")
    try:
        with os.scandir(creatives) as entries:
            next(entries, None)
    except OSError as exc:
        raise CreativesFolderError(
            f"{base_rel} ({creatives}) cannot be read: {exc.strerror or exc}; {hint}"
        ) from None
    return creatives


def scan_creatives(
    root: DataRoot,
    brand: str,
    progress: Callable[[int, int], None] | None = None,
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    previous: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """List every creative of `brand` (manifest table, errors table); `progress(done, total)` per file.

    `previous` is the last manifest of the brand: its rows are reused for files whose size, mtime and inode
    are unchanged (None, or a manifest without those columns, decodes and hashes every file).
    Raises CreativesFolderError when the brand's `creatives/` folder is missing or unreadable.
    """
    budget = budget_pixels(max_megapixels)
    known = _reusable_rows(previous, budget)
    creatives = check_creatives_folder(root, brand)
    base_rel = creatives.relative_to(root.root).as_posix()
    rows: list[dict] = []
    errors: list[dict] = []

    def error(file: str, reason: str) -> None:
        errors.append({"brand": brand, "file": file, "record": "", "stage": STAGE, "reason": reason})

    found = _walk(root, creatives, base_rel)
    for done, item in enumerate(found, start=1):
        if item.problem is not None:
            error(item.rel_path, item.problem)
        else:
            row, problem = _describe(root, brand, item, max_megapixels, known)
            if problem is not None:
                error(item.rel_path, problem)
            else:
                rows.append(row)
        if progress is not None:
            progress(done, len(found))
    return manifest_table(rows), errors_table(errors)


def _reusable_rows(previous: pd.DataFrame | None, budget: float) -> dict[str, dict]:
    """Rows of `previous` by creative_id that a rescan may keep: those with a file identity recorded, and
    within today's pixel budget (a lowered `media.max_megapixels` must see every image again)."""
    if previous is None or previous.empty or not set(IDENTITY) <= set(previous.columns):
        return {}
    rows = previous[previous["mtime_ns"].notna() & previous["inode"].notna()]
    pixels = (rows["width"].astype("Float64") * rows["height"].astype("Float64")).fillna(0)
    rows = rows[(pixels <= budget).to_numpy(dtype=bool)]
    columns = [c for c in MANIFEST_COLUMNS if c in rows.columns]
    return {str(r["creative_id"]): r for r in rows[columns].to_dict("records")}


def _unchanged(known: dict[str, dict], creative_id: str, stat: os.stat_result) -> dict | None:
    """The previous row of `creative_id` if the file still has its size, mtime and inode, else None."""
    row = known.get(creative_id)
    if row is None:
        return None
    if (int(row["bytes"]), int(row["mtime_ns"]), int(row["inode"])) != (
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ino,
    ):
        return None
    return row


def _describe(
    root: DataRoot, brand: str, item: _Found, max_megapixels: float, known: dict[str, dict] | None = None
) -> tuple[dict, str | None]:
    """The manifest row of one file (the previous one when the file is unchanged), or the reason it has none."""
    suffix = Path(item.creative_id).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        media_type = "image"
    elif suffix in VIDEO_EXTENSIONS:
        media_type = "video"
    else:
        return {}, f"unsupported extension {suffix or '(none)'}"
    try:
        path = root.resolve_inside(item.rel_path)
        stat = path.stat()
    except PathEscapeError:
        return {}, "path points outside the data root"
    except OSError as exc:
        return {}, f"unreadable {media_type}: {exc.strerror or exc}"
    size = stat.st_size
    if size == 0:
        return {}, f"unreadable {media_type}: empty file"
    reused = _unchanged(known or {}, item.creative_id, stat)
    if reused is not None and reused["media_type"] == media_type:
        return {**reused, "brand": brand, "path": item.rel_path}, None

    if media_type == "image":
        media, problem = _probe_image(path, max_megapixels)
    else:
        media, problem = _probe_video(path, max_megapixels)
    if problem is not None:
        return {}, f"unreadable {media_type}: {problem}"
    try:
        digest = sha256_file(path)
    except OSError as exc:
        return {}, f"unreadable {media_type}: {exc.strerror or exc}"
    row = {
        "brand": brand,
        "creative_id": item.creative_id,
        "media_type": media_type,
        "path": item.rel_path,
        "bytes": size,
        "sha256": digest,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        **media,
    }
    return row, None


def _probe_image(path: Path, max_megapixels: float) -> tuple[dict, str | None]:
    """Full-size width and height (after EXIF orientation) of an image that decodes whole within the budget."""
    try:
        decoded = decode_file(path, max_megapixels)
    except ImageDecodeError as exc:
        return {}, str(exc)
    width, height = decoded.header.width, decoded.header.height
    return {"width": width, "height": height, "fps": None, "frame_count": None, "duration_s": None}, None


def _probe_video(path: Path, max_megapixels: float) -> tuple[dict, str | None]:
    """Size, frame rate and container frame count of a video whose first frame decodes within the budget."""
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            return {}, "OpenCV cannot open it"
        fps = capture.get(cv2.CAP_PROP_FPS)
        frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        stored = capture.get(cv2.CAP_PROP_FRAME_WIDTH) * capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if stored > budget_pixels(max_megapixels):
            return {}, f"frames of {stored / 1e6:.1f} MP are over the pixel budget of {max_megapixels:g} MP"
        ok, frame = capture.read()
        if not ok or frame is None:
            return {}, "no decodable frame"
    finally:
        capture.release()
    # The decoded frame, not the container header, gives the size: rotation metadata is applied on decode.
    height, width = frame.shape[:2]
    fps_value = fps if math.isfinite(fps) and fps > 0 else None
    count_value = frame_count if frame_count > 0 else None
    duration = count_value / fps_value if fps_value and count_value else None
    return {
        "width": width,
        "height": height,
        "fps": fps_value,
        "frame_count": count_value,
        "duration_s": duration,
    }, None
