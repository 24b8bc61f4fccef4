"""The data root's layout: where every raw and derived file lives (DESIGN, "Data root")."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from creative_assets.settings import validate_brand

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm"})
LABEL_EXTENSIONS = frozenset({".json", ".jsonl"})
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PathEscapeError(ValueError):
    """A path that would leave the data root."""


@dataclass(frozen=True)
class DataRoot:
    """Paths under one data root. Every path the pipeline reads or writes comes from here."""

    root: Path
    # Folder (relative to the root) → (its real path, device, inode) when last resolved; see resolve_inside.
    _real_folders: dict[str, tuple[Path, int, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _root_prefix: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())
        object.__setattr__(self, "_root_prefix", str(self.root).rstrip(os.sep) + os.sep)

    # raw inputs
    def raw(self, brand: str) -> Path:
        """`raw/<brand>/`."""
        return self.root / "raw" / validate_brand(brand)

    def creatives(self, brand: str) -> Path:
        """`raw/<brand>/creatives/`: images and videos; creative_id is the posix path below it."""
        return self.raw(brand) / "creatives"

    def labels(self, brand: str) -> Path:
        """`raw/<brand>/labels/`: COCO json, Azure ML COCO export, Azure ML JSONL."""
        return self.raw(brand) / "labels"

    def impressions(self) -> Path | None:
        """`raw/impressions.csv` or `.parquet`, whichever exists (csv first), else None."""
        for name in ("impressions.csv", "impressions.parquet"):
            p = self.root / "raw" / name
            if p.is_file():
                return p
        return None

    def brands(self) -> list[str]:
        """Brand folders under `raw/` whose names are valid brands, sorted."""
        base = self.root / "raw"
        if not base.is_dir():
            return []
        out = []
        for p in sorted(base.iterdir()):
            if p.is_dir():
                try:
                    out.append(validate_brand(p.name))
                except ValueError:
                    continue
        return out

    # derived
    def frames(self, brand: str) -> Path:
        """`frames/<brand>/`: extracted frames, `<creative_id>/<frame:06d>.jpg`."""
        return self.root / "frames" / validate_brand(brand)

    def frame_path(self, brand: str, creative_id: str, frame_index: int) -> Path:
        """Where frame `frame_index` of video `creative_id` is stored."""
        return self.frames(brand) / creative_id / f"{frame_index:06d}.jpg"

    def datasets(self, brand: str, object_name: str) -> Path:
        """`datasets/<brand>/<object>/`: the `{train,valid,test}.json` COCO files (not under warehouse/)."""
        return self.root / "datasets" / validate_brand(brand) / object_name

    def models(self, brand: str, object_name: str) -> Path:
        """`models/<brand>/<object>/`: grid trials, the chosen checkpoint and its config."""
        return self.root / "models" / validate_brand(brand) / object_name

    def warehouse(self, asset: str, brand: str | None = None, object_name: str | None = None) -> Path:
        """`warehouse/<asset>/brand=<b>[/object=<o>]/` (Hive partitions)."""
        p = self.root / "warehouse" / asset
        if brand is not None:
            p = p / f"brand={validate_brand(brand)}"
        if object_name is not None:
            p = p / f"object={object_name}"
        return p

    def exports(self, brand: str, object_name: str, day: str) -> Path:
        """`exports/<brand>/<object>/<date>/`: one labelling task (images, COCO, Azure ML JSONL)."""
        if not _DAY_RE.fullmatch(day):
            raise ValueError(f"an export folder is named by an ISO date (YYYY-MM-DD), not {day!r}")
        return self.root / "exports" / validate_brand(brand) / object_name / day

    def work(self, *parts: str) -> Path:
        """`work/…`: resumable intermediate state (batch manifests, staging)."""
        return self.root.joinpath("work", *parts)

    # safety
    def relative(self, path: Path) -> str:
        """`path` relative to the root, posix; PathEscapeError if it is outside."""
        resolved = Path(path).resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            raise PathEscapeError(f"{path} is outside the data root {self.root}") from None

    def display(self, path: Path) -> str:
        """How tables name a file: relative to the root when inside it, else its absolute posix path."""
        try:
            return self.relative(path)
        except PathEscapeError:
            return Path(path).resolve().as_posix()

    def resolve_inside(self, relative: str) -> Path:
        """The absolute path of `relative` (posix, under the root); PathEscapeError if it escapes.

        Symlinks anywhere below the root are followed and must stay inside it. `Path.resolve` costs one
        `lstat` per component of the absolute path (about 9 per creative, 177k calls for 20k creatives), so
        each folder's real path is resolved once and remembered with its device and inode: a later call
        costs one `lstat` of the folder (which revalidates it: a folder since replaced by a symlink, or by
        another folder, no longer matches) and one of the file (which may itself be a symlink).
        """
        path = Path(relative)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            return self._checked((self.root / path).resolve(), relative)
        folder = self._real_folder(path.parent.as_posix())
        if folder is None:
            return self._checked((self.root / path).resolve(), relative)
        candidate = folder / path.name
        if candidate.is_symlink():
            return self._checked(candidate.resolve(), relative)
        return candidate

    def _real_folder(self, folder: str) -> Path | None:
        """The real path of an existing folder below the root (checked inside it), or None to resolve fully."""
        try:
            seen = os.lstat(self.root / folder)
        except OSError:
            return None
        if stat.S_ISLNK(seen.st_mode) or not stat.S_ISDIR(seen.st_mode):
            return None
        known = self._real_folders.get(folder)
        if known is not None and known[1:] == (seen.st_dev, seen.st_ino):
            return known[0]
        real = self._checked((self.root / folder).resolve(), folder)
        self._real_folders[folder] = (real, seen.st_dev, seen.st_ino)
        return real

    def _checked(self, candidate: Path, relative: str) -> Path:
        """`candidate` if it is the root or below it, else PathEscapeError naming `relative`."""
        if candidate != self.root and not str(candidate).startswith(self._root_prefix):
            raise PathEscapeError(f"{relative!r} escapes the data root")
        return candidate
