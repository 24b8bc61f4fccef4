"""Data versions of the raw inputs: a cheap fingerprint of what `raw/` holds now.

The raw-files sensor reads these every 30 s for every brand, so a fingerprint costs one directory walk and a
`stat` per file, never a re-hash of every creative: each file contributes its path, size and modification
time (ns). A creative replaced in place gets a new mtime; content hashes stay the manifest's job (its sha256
column), and the manifest's own data version is built from them.

Absence is not removal: a missing or unreadable `creatives/` folder has no version (None), so nothing
downstream is asked to run for it. A brand without a `labels/` folder, or a data root without impressions,
has the version ABSENT — "no labels" and "no impressions" are states the assets know how to build.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from creative_assets.layout import DataRoot

ABSENT = "absent"


def _stat_line(path: Path, relative: str) -> str:
    try:
        st = path.stat()
    except OSError:  # a broken symlink or a file gone mid-walk: its link still counts
        try:
            st = path.lstat()
        except OSError:
            return f"{relative}\0gone\n"
    return f"{relative}\0{st.st_size}\0{st.st_mtime_ns}\n"


def tree_version(folder: Path) -> str | None:
    """Fingerprint of every file below `folder` (path, size, mtime); None if the folder cannot be listed."""
    if not folder.is_dir() or not os.access(folder, os.R_OK | os.X_OK):
        return None
    lines = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            lines.append(_stat_line(path, path.relative_to(folder).as_posix()))
    digest = hashlib.sha256("".join(lines).encode("utf-8", "surrogateescape"))
    return f"{len(lines)}-{digest.hexdigest()[:16]}"


def file_version(path: Path | None) -> str:
    """Fingerprint of one file (name, size, mtime), or ABSENT."""
    if path is None or not path.exists():
        return ABSENT
    digest = hashlib.sha256(_stat_line(path, path.name).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BrandVersions:
    """The raw inputs of one brand: creatives (None while they cannot be seen) and label files."""

    creatives: str | None
    labels: str


def creatives_version(root: DataRoot, brand: str) -> str | None:
    """Data version of `raw/<brand>/creatives/` (None while it cannot be listed)."""
    return tree_version(root.creatives(brand))


def labels_version(root: DataRoot, brand: str) -> str:
    """Data version of `raw/<brand>/labels/` (ABSENT without one)."""
    labels = root.labels(brand)
    return (tree_version(labels) or ABSENT) if labels.exists() else ABSENT


def brand_versions(root: DataRoot, brand: str) -> BrandVersions:
    """Data versions of `raw/<brand>/creatives/` and `raw/<brand>/labels/`."""
    return BrandVersions(creatives=creatives_version(root, brand), labels=labels_version(root, brand))


def impressions_version(root: DataRoot) -> str:
    """Data version of `raw/impressions.csv|.parquet` (ABSENT without one)."""
    return file_version(root.impressions())
