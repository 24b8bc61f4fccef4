"""A per-partition file lock, so two runs of the same partition never work on the same files at once.

The second run waits for the first, then finds its work done (finished grid trials and committed detection
batches are reused) instead of redoing or interleaving it.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def partition_lock(folder: Path, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `<folder>/.lock` for the duration; waits (and says so) if another run has it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"another run is working on {folder}; waiting for it to finish")
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if log:
                log(f"lock on {folder} acquired after {time.monotonic() - start:.0f} s")
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
