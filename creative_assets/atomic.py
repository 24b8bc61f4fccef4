"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A killed process leaves either the old file or the new one, never half of one. The file ends with the mode a
plain `open(target, "w")` would give it (0o666 minus the process umask), not `mkstemp`'s 0o600: the temporary
is created with `os.open(..., 0o666)`, so the kernel applies the umask and no process-wide umask is read or set.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is fsynced and renamed onto `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temporary(target)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _create_temporary(target: Path) -> Path:
    """Create an empty, new `.<name>.<random>.tmp` beside `target` with mode 0o666 & ~umask."""
    for _ in range(100):
        candidate = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name beside {target}")


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: Path, obj: Any) -> None:
    """Write `obj` as indented JSON to `target` atomically."""
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str))


def atomic_write_parquet(target: Path, table: pd.DataFrame | pa.Table) -> None:
    """Write a DataFrame or Arrow table to `target` as Parquet atomically."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries a killed writer left in `folder`; returns how many."""
    n = 0
    if Path(folder).is_dir():
        for p in Path(folder).glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n
