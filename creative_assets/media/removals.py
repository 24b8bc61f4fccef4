"""Which creatives the manifest says were removed, and whether that removal may flow downstream.

Absence is not removal. A creative counts as removed only when a complete scan of a readable `creatives/`
folder no longer lists it and no errors row covers it (an unreadable sub-folder, a broken symlink, an
unreadable or corrupt file are "not seen this time", not "removed"). Removals accumulate in
`warehouse/creative_removals/brand=<b>/`: one row per removed creative_id, with `confirmed`.

A manifest that shrinks by more than `removal.max_shrink_fraction` of what it listed before records its
removals unconfirmed and fails its blocking check, until a run confirms them (the `removal.confirm` setting
or the run tag `creative_assets/confirm_removal=true`). Downstream, `detections` deletes committed rows only
of confirmed removals; everything else it could not recompute is kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

CONFIRM_REMOVAL_TAG = "creative_assets/confirm_removal"
REMOVALS_ASSET = "creative_removals"
REMOVAL_DTYPES = {"brand": "string", "creative_id": "string", "confirmed": "bool"}
REMOVAL_COLUMNS = list(REMOVAL_DTYPES)


def removals_table(rows: list[dict] | None = None) -> pd.DataFrame:
    """A removals table (brand, creative_id, confirmed)."""
    return pd.DataFrame(rows or [], columns=REMOVAL_COLUMNS).astype(REMOVAL_DTYPES)


@dataclass(frozen=True)
class RemovalVerdict:
    """What this manifest removes compared with everything listed before, and whether it may flow on."""

    removals: pd.DataFrame  # every removal known for the brand, old and new
    newly_removed: tuple[str, ...]
    pending: int  # removals not (yet) confirmed
    before: int  # creatives listed before, pending removals included
    fraction: float  # pending / before
    max_fraction: float
    confirmed_by: str  # "", "setting", "run tag" or "within the limit"

    @property
    def passed(self) -> bool:
        """Whether every removal is confirmed (the blocking check's verdict)."""
        return self.pending == 0


def unseen_ids(errors: pd.DataFrame, creatives_rel: str) -> set[str]:
    """creative_ids (or folder prefixes) the scan met but could not read: every manifest errors row's file."""
    prefix = PurePosixPath(creatives_rel)
    out = set()
    for file in errors["file"].astype(str):
        try:
            out.add(PurePosixPath(file).relative_to(prefix).as_posix())
        except ValueError:
            continue
    return out


def is_unseen(creative_id: str, unseen: Collection[str]) -> bool:
    """Whether `creative_id` is one of `unseen` or lies in an unseen folder."""
    return creative_id in unseen or any(creative_id.startswith(f"{u}/") for u in unseen)


def judge_removals(
    brand: str,
    previous_ids: Iterable[str] | None,
    current_ids: Iterable[str],
    unseen: Collection[str],
    known: pd.DataFrame,
    max_fraction: float,
    confirm: str = "",
) -> RemovalVerdict:
    """Update the brand's removals with this scan; `confirm` names what confirms removals ("" = nothing)."""
    current = set(current_ids)
    previous = set(previous_ids or ())
    rows = {str(r.creative_id): bool(r.confirmed) for r in known.itertuples()}
    for cid in current:  # a creative that came back is no longer removed
        rows.pop(cid, None)
    newly = sorted(c for c in previous - current if not is_unseen(c, unseen) and c not in rows)
    for cid in newly:
        rows[cid] = False
    pending = [c for c, ok in rows.items() if not ok]
    before = len(current | previous | set(pending))
    fraction = len(pending) / before if before else 0.0
    confirmed_by = confirm or ("within the limit" if fraction <= max_fraction else "")
    if confirmed_by:
        rows = dict.fromkeys(rows, True)
    table = removals_table(
        [{"brand": brand, "creative_id": c, "confirmed": ok} for c, ok in sorted(rows.items())]
    )
    return RemovalVerdict(
        removals=table,
        newly_removed=tuple(newly),
        pending=sum(not ok for ok in rows.values()),
        before=before,
        fraction=fraction,
        max_fraction=max_fraction,
        confirmed_by=confirmed_by if pending else "",
    )


def confirmed_removals(removals: pd.DataFrame) -> set[str]:
    """creative_ids whose removal is confirmed."""
    if removals.empty:
        return set()
    return set(removals.loc[removals["confirmed"].astype(bool), "creative_id"].astype(str))


def prune_removed_frames(frames_root: Path, removed: Iterable[str], listed: Collection[str]) -> list[str]:
    """Delete the extracted frames of confirmed-removed videos; returns the creative_ids whose frames went.

    `frames_root` is `frames/<brand>/`. A creative listed in the manifest again keeps its frames, and a
    creative_id whose folder would lie outside `frames_root` is never touched. Folders left empty above a
    removed video's folder go too, so the tree mirrors what is still in `creatives/`.
    """
    base = frames_root.resolve()
    pruned = []
    for creative_id in sorted(set(removed) - set(listed)):
        folder = (base / creative_id).resolve()
        if base not in folder.parents or not folder.is_dir():
            continue
        shutil.rmtree(folder)
        pruned.append(creative_id)
        parent = folder.parent
        while parent != base and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    return pruned
