"""Content checksums: the one file hash used for creatives, split files and model ids."""

from __future__ import annotations

import hashlib
from pathlib import Path

_HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of the file at `path`, read in 1 MiB chunks so memory does not grow with file size."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
