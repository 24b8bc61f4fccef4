"""Checkpoint retention: once the winner is published, the losing trials' weights are only disk.

A grid writes one checkpoint per trial (`trials/<key>/model.pth`); with detectron2's ResNet-18 FPN that is
47 MB a trial, with X101-FPN over 200 MB, times nine trials per brand × object in the full profile. After
`chosen_model` has copied the best trial's checkpoint into the model store, the others are removed unless
`grid.keep_trial_checkpoints` is set. Their `result.json` files stay: they hold every number the grid table
shows, and they are what tells a re-run that a trial is finished (see `grid.finished_trial`), so pruning
never causes retraining. Only finished trials (a result beside the checkpoint) are touched: a checkpoint
without a result belongs to a run in progress or a killed one that will be redone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from creative_assets.detection.grid import CHECKPOINT_FILE, RESULT_FILE


@dataclass(frozen=True)
class PruneReport:
    """What `prune_losing_checkpoints` removed."""

    removed: list[str]
    freed_bytes: int


def prune_losing_checkpoints(trials_dir: Path, winner: str) -> PruneReport:
    """Remove `trials/<key>/model.pth` of every finished trial in `trials_dir` except `winner` (a trial key)."""
    trials_dir = Path(trials_dir)
    if not (trials_dir / winner).is_dir():
        raise FileNotFoundError(f"the winning trial {winner} is not in {trials_dir}; nothing was removed")
    removed: list[str] = []
    freed = 0
    for trial_dir in sorted(p for p in trials_dir.iterdir() if p.is_dir()):
        checkpoint = trial_dir / CHECKPOINT_FILE
        if trial_dir.name == winner or not (trial_dir / RESULT_FILE).is_file() or not checkpoint.is_file():
            continue
        size = checkpoint.stat().st_size
        checkpoint.unlink()
        removed.append(trial_dir.name)
        freed += size
    return PruneReport(removed=removed, freed_bytes=freed)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under `folder` (0 when it does not exist)."""
    folder = Path(folder)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def forget_pruned_winner(trials_dir: Path, winner: str) -> bool:
    """When `winner` finished but its checkpoint was pruned (an earlier loser that wins after the grid
    grew), remove its result so the next grid run retrains it; True if it did."""
    trial_dir = Path(trials_dir) / winner
    result = trial_dir / RESULT_FILE
    if result.is_file() and not (trial_dir / CHECKPOINT_FILE).is_file():
        result.unlink()
        return True
    return False
