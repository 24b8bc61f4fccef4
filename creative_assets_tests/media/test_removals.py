"""Which creatives count as removed: the judge alone, then the creative_manifest asset and its blocking check."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import dagster as dg
import numpy as np
import pandas as pd
import pytest

from creative_assets.assets.ingest import creative_manifest
from creative_assets.definitions import local_resources
from creative_assets.layout import DataRoot
from creative_assets.media.removals import (
    CONFIRM_REMOVAL_TAG,
    REMOVALS_ASSET,
    confirmed_removals,
    judge_removals,
    removals_table,
)
from creative_assets.partitions import BRAND_PARTITIONS_NAME
from creative_assets.tables.warehouse import read_table

BRAND = "acme"


def judge(previous, current, unseen=(), known=None, confirm=""):
    return judge_removals(
        BRAND, previous, current, set(unseen), known if known is not None else removals_table(), 0.2, confirm
    )


def test_a_small_removal_is_confirmed_within_the_limit() -> None:
    verdict = judge([f"{i}.png" for i in range(10)], [f"{i}.png" for i in range(8)])
    assert verdict.passed and verdict.newly_removed == ("8.png", "9.png")
    assert verdict.fraction == 0.2 and verdict.confirmed_by == "within the limit"
    assert confirmed_removals(verdict.removals) == {"8.png", "9.png"}


def test_a_large_removal_stays_unconfirmed_and_fails() -> None:
    verdict = judge([f"{i}.png" for i in range(10)], ["0.png", "1.png"])
    assert not verdict.passed and verdict.pending == 8 and verdict.fraction == 0.8
    assert confirmed_removals(verdict.removals) == set()


def test_a_pending_removal_is_not_forgotten_by_the_next_scan() -> None:
    first = judge([f"{i}.png" for i in range(10)], ["0.png", "1.png"])
    again = judge(["0.png", "1.png"], ["0.png", "1.png"], known=first.removals)
    assert not again.passed and again.pending == 8 and again.before == 10
    confirmed = judge(["0.png", "1.png"], ["0.png", "1.png"], known=again.removals, confirm="run tag")
    assert confirmed.passed and len(confirmed_removals(confirmed.removals)) == 8


def test_creatives_not_seen_are_not_removed_and_returning_ones_are_unremoved() -> None:
    verdict = judge(["a/1.png", "a/2.png", "b.png", "c.png"], ["c.png"], unseen={"a", "b.png"})
    assert verdict.newly_removed == () and verdict.passed
    gone = judge(["b.png", "c.png"], ["c.png"], confirm="setting")
    back = judge(["c.png"], ["b.png", "c.png"], known=gone.removals)
    assert confirmed_removals(gone.removals) == {"b.png"} and back.removals.empty


# ------------------------------------------------------------------------------------------ the asset


def _write(root: DataRoot, names: list[str]) -> None:
    folder = root.creatives(BRAND)
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 20 * i, np.uint8))


def _materialize(
    root: DataRoot, instance: dg.DagsterInstance, tags: dict | None = None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [creative_manifest],
        partition_key=BRAND,
        instance=instance,
        resources=local_resources(str(root.root), "smoke"),
        tags=tags,
        raise_on_error=False,
    )


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        inst.add_dynamic_partitions(BRAND_PARTITIONS_NAME, [BRAND])
        yield inst


def _check(result: dg.ExecuteInProcessResult) -> bool:
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation.passed


def test_the_manifest_check_blocks_a_large_shrink_until_a_run_tag_confirms_it(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    root = DataRoot(tmp_path / "data")
    names = [f"{i}.png" for i in range(5)]
    _write(root, names)
    assert _check(_materialize(root, instance))
    for name in names[2:]:
        (root.creatives(BRAND) / name).unlink()

    blocked = _materialize(root, instance)
    assert not _check(blocked)
    removals = read_table(root.warehouse(REMOVALS_ASSET, BRAND))
    assert sorted(removals["creative_id"]) == names[2:] and not removals["confirmed"].any()
    assert not _check(_materialize(root, instance))  # a plain re-run does not clear it

    confirmed = _materialize(root, instance, tags={CONFIRM_REMOVAL_TAG: "true"})
    assert _check(confirmed)
    removals = read_table(root.warehouse(REMOVALS_ASSET, BRAND))
    assert confirmed_removals(removals) == set(names[2:])


def test_a_missing_creatives_folder_fails_the_manifest_and_keeps_the_last_one(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    root = DataRoot(tmp_path / "data")
    _write(root, ["a.png", "b.png"])
    assert _materialize(root, instance).success
    shutil.rmtree(root.creatives(BRAND))

    result = _materialize(root, instance)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE][0]
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "CreativesFolderError"
    assert cause.message.startswith(
        "creative_assets.media.manifest.CreativesFolderError: raw/acme/creatives ("
    )
    assert "does not exist" in cause.message
    kept = read_table(root.warehouse("creative_manifest", BRAND))
    assert sorted(kept["creative_id"]) == ["a.png", "b.png"]
    assert isinstance(kept, pd.DataFrame)


def test_pruning_frames_spares_listed_creatives_and_anything_outside_the_brand_folder(tmp_path: Path) -> None:
    from creative_assets.media.removals import prune_removed_frames

    frames = tmp_path / "frames" / BRAND
    for creative_id in ("videos/gone.mp4", "videos/back.mp4", "kept.mp4"):
        (frames / creative_id).mkdir(parents=True)
        (frames / creative_id / "000000.jpg").write_bytes(b"jpeg")
    outside = tmp_path / "frames" / "other.mp4"
    outside.mkdir()

    pruned = prune_removed_frames(
        frames, removed={"videos/gone.mp4", "videos/back.mp4", "../other.mp4"}, listed={"videos/back.mp4"}
    )

    assert pruned == ["videos/gone.mp4"]
    assert not (frames / "videos/gone.mp4").exists()
    assert (frames / "videos/back.mp4/000000.jpg").exists() and (frames / "kept.mp4").exists()
    assert outside.is_dir()
