"""Atomic writes end with the mode a plain open() gives under the process umask, compared with os.stat."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from creative_assets.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
)


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


WRITERS = {
    "bytes": lambda p: atomic_write_bytes(p, b"\xff\xd8frame"),
    "text": lambda p: atomic_write_text(p, "hello"),
    "json": lambda p: atomic_write_json(p, {"a": 1}),
    "parquet": lambda p: atomic_write_parquet(p, pd.DataFrame({"a": [1, 2]})),
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_atomic_write_has_the_mode_plain_open_gives(tmp_path: Path, umask: int, kind: str) -> None:
    plain = tmp_path / "plain"
    with open(plain, "w") as fh:
        fh.write("x")
    target = tmp_path / "sub" / f"out.{kind}"

    WRITERS[kind](target)

    assert mode(target) == mode(plain) == 0o666 & ~umask
    assert {0o022: 0o644, 0o077: 0o600, 0o002: 0o664}[umask] == mode(target)
    # The folder it created follows the umask too, and no temporary is left behind.
    assert mode(target.parent) == 0o777 & ~umask
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_overwrite_takes_the_current_umask_and_keeps_content_whole(tmp_path: Path) -> None:
    target = tmp_path / "table.parquet"
    previous = os.umask(0o077)
    try:
        atomic_write_parquet(target, pd.DataFrame({"a": [1]}))
        assert mode(target) == 0o600
        os.umask(0o022)
        atomic_write_parquet(target, pd.DataFrame({"a": [1, 2, 3]}))
    finally:
        os.umask(previous)
    assert mode(target) == 0o644
    assert pq.read_table(target).column("a").to_pylist() == [1, 2, 3]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "frame.jpg"
    atomic_write_bytes(target, b"old")

    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.jpg"]
