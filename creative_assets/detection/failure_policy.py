"""One failure policy for every executor (sequential, process pool, Ray): a unit of work (one training run of
the grid, one detection batch) that still fails after `DEFAULT_MAX_RETRIES` retries becomes error rows, the
other units finish, and the asset's check fails. Nothing is lost: a failed unit saved no result, so the next
run tries it again.
"""

from __future__ import annotations

import traceback

import pandas as pd

DEFAULT_MAX_RETRIES = 2
GRID_ERROR_COLUMNS = ["trial", "run", "error"]


def reason_of(error: BaseException | None) -> str:
    """The last line of an error's text: the exception that ended the unit, without wrappers' noise."""
    if error is None:
        return "the unit ended without saving its result"
    # "Type: message"; an error wrapped by Ray carries the worker's traceback, whose last line is the cause
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def grid_error_frame(rows: list[dict[str, str]]) -> pd.DataFrame:
    """Error rows of a grid (`GRID_ERROR_COLUMNS`: trial, run, error; all strings)."""
    return pd.DataFrame(rows, columns=GRID_ERROR_COLUMNS).astype(dict.fromkeys(GRID_ERROR_COLUMNS, "string"))


def check_retries(max_retries: int) -> int:
    """`max_retries` if it is ≥ 0, else ValueError."""
    if max_retries < 0:
        raise ValueError(f"max_retries must be >= 0, got {max_retries}")
    return max_retries
