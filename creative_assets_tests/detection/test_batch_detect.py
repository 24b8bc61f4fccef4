"""run_detection on real PNG/JPEG files with a small colour-blob detector: parts, resume, errors, staleness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import duckdb
import numpy as np
import pandas as pd
import pytest

from creative_assets.checksums import sha256_file
from creative_assets.detection import batch_runs
from creative_assets.detection.backend import Predictions
from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.batch_rows import DeferredModels, LoadedModel
from creative_assets.detection.batches import (
    WORK_ITEM_DTYPES,
    ends_batch,
    model_fingerprint,
    plan_batches,
    work_items,
)
from creative_assets.layout import DataRoot
from creative_assets.tables.schemas import DETECTIONS, check_schema
from creative_assets.tables.warehouse import part_files, read_detections
from creative_assets_tests.support.colour_brand import (
    BRAND,
    ColourBlobDetector,
    build_brand,
    colour_models,
    manifest_row,
    write_still,
)

REPO = Path(__file__).resolve().parents[2]
SUBPROCESS_SCRIPT = Path(__file__).with_name("detect_in_subprocess.py")


@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    return DataRoot(tmp_path / "data")


@pytest.fixture
def brand_items(root: DataRoot) -> pd.DataFrame:
    manifest, frames = build_brand(root)
    return work_items(manifest, frames)


def detect(root: DataRoot, items: pd.DataFrame, models=None, out: str = "detections", **kwargs):
    options = {"batch_size": 3, "images_per_forward": 2, "score_floor": 0.2, "loader_workers": 0}
    options.update(kwargs)
    return run_detection(root, BRAND, items, models or colour_models(), root.warehouse(out, BRAND), **options)


def part_stats(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in part_files(folder)}


def test_work_items_lists_stills_and_every_frame_sorted(brand_items: pd.DataFrame) -> None:
    assert dict(brand_items.dtypes.astype(str)) == WORK_ITEM_DTYPES
    assert len(brand_items) == 10 + 4
    assert list(brand_items["creative_id"]) == sorted(brand_items["creative_id"])
    stills = brand_items[brand_items["media_type"] == "image"]
    assert stills["frame_index"].isna().all() and stills["timestamp_s"].isna().all()
    video = brand_items[brand_items["media_type"] == "video"]
    assert list(video["frame_index"]) == [0, 10, 20, 30]
    assert video["path"].iloc[0] == "frames/acme/vid/spot.mp4/000000.jpg"
    assert video["sha256"].nunique() == 1


def test_work_items_rejects_frames_of_videos_missing_from_the_manifest(root: DataRoot) -> None:
    manifest, frames = build_brand(root, n_stills=1)
    with pytest.raises(ValueError, match="vid/spot.mp4"):
        work_items(manifest[manifest["media_type"] == "image"], frames)


def test_detections_have_the_schema_boxes_and_thresholds(root: DataRoot, brand_items: pd.DataFrame) -> None:
    run = detect(root, brand_items)
    table = read_detections(root.warehouse("detections", BRAND))
    assert check_schema(table, DETECTIONS) == []
    assert run.rows == len(table) and run.errors.empty

    still = table[(table["creative_id"] == "img/00.png") & (table["object"] == "logo")]
    assert len(still) == 2  # the filled square and the ring
    square, ring = still.iloc[0], still.iloc[1]
    assert (square.x_min, square.y_min, square.x_max, square.y_max) == (4.0, 6.0, 20.0, 22.0)
    assert square.box_area_frac == pytest.approx(16 * 16 / (64 * 48))
    assert square.above_threshold and not ring.above_threshold
    assert square.threshold == 0.6 and square.model_id == "m1" and square.backend == "colour-blobs"
    assert pd.isna(square.frame_index) and pd.isna(square.timestamp_s)

    frames = table[table["creative_id"] == "vid/spot.mp4"]
    assert list(frames["frame_index"]) == [20, 30]
    assert list(frames["timestamp_s"]) == [2.0, 3.0]
    assert set(frames["media_type"]) == {"video"}


def test_each_batch_is_one_part_holding_whole_creatives(root: DataRoot, brand_items: pd.DataFrame) -> None:
    run = detect(root, brand_items)
    parts = part_files(root.warehouse("detections", BRAND))
    assert run.parts_written == run.batches == len(parts) > 1
    table = read_detections(root.warehouse("detections", BRAND))
    assert (table.groupby("creative_id")["batch"].nunique() == 1).all()
    assert {f"part-{b}.parquet" for b in table["batch"]} <= {p.name for p in parts}


def test_detection_output_does_not_depend_on_forward_size_or_loader_workers(
    root: DataRoot, brand_items: pd.DataFrame
) -> None:
    detect(root, brand_items, out="serial", images_per_forward=1, loader_workers=0)
    detect(root, brand_items, out="workers", images_per_forward=3, loader_workers=1)
    pd.testing.assert_frame_equal(
        read_detections(root.warehouse("serial", BRAND)), read_detections(root.warehouse("workers", BRAND))
    )


def test_detection_output_does_not_depend_on_model_threads(root: DataRoot, brand_items: pd.DataFrame) -> None:
    # three models on two threads: each model runs on both halves of a chunk, possibly at once
    models = colour_models() + [LoadedModel("logo_again", "m-again", ColourBlobDetector(), {"logo": 0.5})]
    one = detect(root, brand_items, models=models, out="one", images_per_forward=4, model_threads=1)
    two = detect(root, brand_items, models=models, out="two", images_per_forward=4, model_threads=2)
    assert one.rows == two.rows > 0
    pd.testing.assert_frame_equal(
        read_detections(root.warehouse("one", BRAND)), read_detections(root.warehouse("two", BRAND))
    )


def test_rerun_reuses_every_committed_part(root: DataRoot, brand_items: pd.DataFrame) -> None:
    first = detect(root, brand_items)
    before = part_stats(root.warehouse("detections", BRAND))
    again = detect(root, brand_items)
    assert (again.parts_written, again.parts_reused, again.images) == (0, first.batches, 0)
    assert again.rows == first.rows
    assert part_stats(root.warehouse("detections", BRAND)) == before


def test_killed_run_resumes_without_loss_or_duplicates(root: DataRoot, brand_items: pd.DataFrame) -> None:
    items_file = root.root / "items.parquet"
    brand_items.to_parquet(items_file)
    out = root.warehouse("detections", BRAND)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(SUBPROCESS_SCRIPT), str(root.root), str(items_file), str(out), "0.15"], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not part_files(out):
            assert proc.poll() is None, "the detection subprocess ended before committing a part"
            assert time.monotonic() < deadline, "no part committed within 60 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    committed = part_stats(out)
    total = len(plan_batches(brand_items, 3, model_fingerprint([m.describe() for m in colour_models()], 0.2)))
    assert 1 <= len(committed) < total

    resumed = detect(root, brand_items)
    assert resumed.parts_reused == len(committed)
    assert resumed.parts_written == total - len(committed)
    after = part_stats(out)
    assert {name: after[name] for name in committed} == committed
    assert not list(out.glob(".*.tmp"))

    detect(root, brand_items, out="reference")
    table = read_detections(out)
    assert not table.duplicated().any()
    pd.testing.assert_frame_equal(table, read_detections(root.warehouse("reference", BRAND)))


def test_temporaries_left_by_a_killed_writer_are_removed_on_start(
    root: DataRoot, brand_items: pd.DataFrame
) -> None:
    out = root.warehouse("detections", BRAND)
    out.mkdir(parents=True)
    (out / ".part-abc.parquet.x1y2.tmp").write_bytes(b"half a part")
    run = detect(root, brand_items)
    assert run.temporaries_removed == 1
    assert not list(out.glob(".*.tmp"))


def test_corrupt_image_is_an_error_row_and_its_batch_keeps_the_good_images(
    root: DataRoot,
) -> None:
    manifest, frames = build_brand(root)
    bad = root.creatives(BRAND) / "img/03.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    manifest.loc[manifest["creative_id"] == "img/03.jpg", "sha256"] = sha256_file(bad)
    items = work_items(manifest, frames)

    run = detect(root, items, batch_size=100)
    assert run.batches == run.parts_written == 1
    assert list(run.errors["file"]) == ["raw/acme/creatives/img/03.jpg"]
    assert list(run.errors["stage"]) == ["detections"] and "decode" in run.errors["reason"].iloc[0]
    table = read_detections(root.warehouse("detections", BRAND))
    assert set(table["creative_id"]) == set(manifest["creative_id"]) - {"img/03.jpg"}
    errors_part = part_files(root.warehouse("detection_errors", BRAND))
    assert [p.name for p in errors_part] == [f"part-{table['batch'].iloc[0]}.parquet"]


def test_changed_model_recomputes_every_part_and_removes_the_old_ones(
    root: DataRoot, brand_items: pd.DataFrame
) -> None:
    old = detect(root, brand_items, models=colour_models("m1"))
    old_parts = set(part_stats(root.warehouse("detections", BRAND)))
    new = detect(root, brand_items, models=colour_models("m2"))
    new_parts = set(part_stats(root.warehouse("detections", BRAND)))
    assert (new.parts_written, new.parts_reused, new.parts_removed) == (new.batches, 0, old.batches)
    assert not old_parts & new_parts
    table = read_detections(root.warehouse("detections", BRAND))
    assert set(table["model_id"]) == {"m2"} and len(table) == old.rows


def test_new_creative_recomputes_only_the_batch_it_joins(root: DataRoot) -> None:
    manifest, frames = build_brand(root)
    detect(root, work_items(manifest, frames))
    before = part_stats(root.warehouse("detections", BRAND))
    # An id that does not end a batch joins an existing one instead of splitting it.
    name = next(f"img/05b{i}.png" for i in range(100) if not ends_batch(f"img/05b{i}.png", 3))
    grown = pd.concat([manifest, pd.DataFrame([write_still(root, name, 5)])], ignore_index=True)

    run = detect(root, work_items(grown, frames))
    assert (run.parts_written, run.parts_removed, run.parts_reused) == (1, 1, len(before) - 1)
    after = part_stats(root.warehouse("detections", BRAND))
    assert len(set(before) & set(after)) == len(before) - 1
    assert all(after[name_] == stat for name_, stat in before.items() if name_ in after)
    table = read_detections(root.warehouse("detections", BRAND))
    assert name in set(table["creative_id"])


def test_adding_a_creative_changes_at_most_the_batches_around_it() -> None:
    ids = [f"creative_{i:04d}.jpg" for i in range(0, 2000, 2)]
    items = pd.DataFrame(
        {
            "brand": BRAND,
            "creative_id": ids,
            "media_type": "image",
            "frame_index": pd.array([pd.NA] * len(ids), dtype="Int64"),
            "timestamp_s": pd.array([pd.NA] * len(ids), dtype="Float64"),
            "path": ids,
            "sha256": "x",
        }
    ).astype(WORK_ITEM_DTYPES)
    before = plan_batches(items, 20, "models")
    grown = pd.concat([items, items.iloc[[500]].assign(creative_id="creative_1001.jpg")])
    grown = grown.sort_values("creative_id").reset_index(drop=True)
    after = plan_batches(grown, 20, "models")
    assert max(len(b.creative_ids) for b in after) <= 40
    assert len({b.key for b in before} - {b.key for b in after}) <= 2
    assert len(before) > 20


def test_progress_reaches_the_total_and_the_log_has_a_line_per_batch(
    root: DataRoot, brand_items: pd.DataFrame, monkeypatch
) -> None:
    monkeypatch.setattr(batch_runs, "BATCH_LINE_INTERVAL_S", 0.0)
    calls: list[tuple[int, int]] = []
    lines: list[str] = []
    run = detect(root, brand_items, log=lines.append, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(brand_items), len(brand_items))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    batch_lines = [line for line in lines if "committed (" in line]
    assert len(batch_lines) == run.batches and all(
        "images/s" in line and "ETA" in line for line in batch_lines
    )


def test_fast_batches_log_the_first_and_last_batch_lines_but_report_progress_for_each(
    root: DataRoot, brand_items: pd.DataFrame, monkeypatch
) -> None:
    monkeypatch.setattr(batch_runs, "BATCH_LINE_INTERVAL_S", 3600.0)
    calls: list[tuple[int, int]] = []
    lines: list[str] = []
    run = detect(root, brand_items, log=lines.append, progress=lambda d, t: calls.append((d, t)))
    batch_lines = [line for line in lines if "committed (" in line]
    assert run.batches > 2
    assert [line.split("batch ")[1].split(" ")[0] for line in batch_lines] == [
        f"1/{run.batches}",
        f"{run.batches}/{run.batches}",
    ]
    assert len({d for d, _ in calls}) > run.batches  # every batch (and chunk) still moves the progress bar


def test_a_class_without_a_threshold_is_rejected(root: DataRoot, brand_items: pd.DataFrame) -> None:
    models = [LoadedModel("logo", "m1", ColourBlobDetector(["logo", "product"]), {"logo": 0.6})]
    with pytest.raises(ValueError, match="no threshold for class"):
        detect(root, brand_items, models=models)


def test_detections_read_back_with_duckdb_hive_partitions(root: DataRoot, brand_items: pd.DataFrame) -> None:
    run = detect(root, brand_items)
    pattern = (root.root / "warehouse" / "detections" / "*" / "*.parquet").as_posix()
    rows = duckdb.sql(
        f"select brand, object, count(*) as n, sum(above_threshold::int) as found "
        f"from read_parquet('{pattern}', hive_partitioning=true) group by all order by object"
    ).fetchall()
    assert sum(n for _, _, n, _ in rows) == run.rows
    assert {b for b, _, _, _ in rows} == {BRAND}
    assert [o for _, o, _, _ in rows] == ["logo", "product"]


# ------------------------------------------------------------------------------ absence is not removal


def test_rows_of_creatives_absent_but_not_removed_are_kept_and_not_duplicated(root: DataRoot) -> None:
    manifest, frames = build_brand(root)
    first = detect(root, work_items(manifest, frames))
    table = read_detections(root.warehouse("detections", BRAND))
    # the manifest could not see img/02.png and img/03.jpg this time (e.g. a folder that failed to mount)
    unseen = {"img/02.png", "img/03.jpg"}
    shrunk = manifest[~manifest["creative_id"].isin(unseen)]

    run = detect(root, work_items(shrunk, frames), removed=set())
    after = read_detections(root.warehouse("detections", BRAND))
    key = ["creative_id", "frame_index", "object", "x_min", "y_min"]
    assert set(after["creative_id"]) == set(table["creative_id"])
    assert len(after) == len(table) == first.rows
    assert not after.duplicated(key).any()
    assert run.parts_kept_unseen >= 1

    # once the manifest says they were removed, their rows go
    detect(root, work_items(shrunk, frames), removed=unseen)
    gone = read_detections(root.warehouse("detections", BRAND))
    assert set(gone["creative_id"]) == set(table["creative_id"]) - unseen
    assert len(gone) == len(table) - int(table["creative_id"].isin(unseen).sum())


def test_an_image_over_the_pixel_budget_is_decoded_reduced_with_boxes_in_full_size_pixels(
    root: DataRoot,
) -> None:
    big = np.full((480, 640, 3), 235, np.uint8)
    cv2.rectangle(big, (200, 100), (359, 259), (0, 0, 255), thickness=-1)
    path = root.creatives(BRAND) / "big.jpg"
    path.parent.mkdir(parents=True)
    assert cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 100])
    items = work_items(
        pd.DataFrame([manifest_row(root, "big.jpg", "image", path)]),
        pd.DataFrame(columns=["brand", "creative_id", "frame_index", "timestamp_s", "path"]),
    )
    full = detect(root, items, out="full")
    reduced = detect(root, items, out="reduced", max_megapixels=0.08)  # 640×480 = 0.31 MP → 1/2 size
    a = read_detections(root.warehouse("full", BRAND)).query("object == 'logo'")
    b = read_detections(root.warehouse("reduced", BRAND)).query("object == 'logo'")
    assert full.errors.empty and reduced.errors.empty and len(a) == len(b) == 1
    corners = ["x_min", "y_min", "x_max", "y_max"]
    assert np.allclose(a[corners].to_numpy(), [[200, 100, 360, 260]], atol=1)
    assert np.allclose(b[corners].to_numpy(), a[corners].to_numpy(), atol=2)
    assert np.isclose(b["box_area_frac"].iloc[0], a["box_area_frac"].iloc[0], atol=0.01)


def test_a_png_over_the_pixel_budget_is_an_errors_row(root: DataRoot) -> None:
    manifest, frames = build_brand(root, n_stills=2)
    run = detect(root, work_items(manifest, frames), max_megapixels=0.001)  # 64×48 = 0.003 MP
    reasons = dict(zip(run.errors["file"], run.errors["reason"], strict=True))
    assert "only JPEG can be decoded reduced" in reasons["raw/acme/creatives/img/00.png"]
    assert "raw/acme/creatives/img/01.jpg" not in reasons  # the JPEG is decoded reduced instead


class FailingFirstCalls:
    """Wraps a detector so that its first `n` predict calls raise (a transient CUDA or worker error)."""

    def __init__(self, inner: ColourBlobDetector, n: int) -> None:
        self.inner, self.n = inner, n
        self.classes, self.backend, self.device = inner.classes, inner.backend, inner.device

    def predict(self, images: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        if self.n > 0:
            self.n -= 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        return self.inner.predict(images, score_floor)


def test_models_failing_side_by_side_fail_one_attempt_and_the_retry_commits_the_same_table(
    root: DataRoot, brand_items: pd.DataFrame
):
    reference = detect(root, brand_items, out="reference")
    run, lines = _flaky_run(root, brand_items, failing_calls=2, model_threads=2)
    assert run.parts_written == reference.parts_written and run.errors.empty
    assert any("batch 1 attempt 1 failed" in line for line in lines)
    _assert_same_tables(root, "flaky", "reference")


def _flaky_run(root: DataRoot, items: pd.DataFrame, failing_calls: int, model_threads: int):
    """`detect` with the colour models whose first `failing_calls` calls raise; the run and its log lines."""
    flaky = [
        LoadedModel(m.object_name, m.model_id, FailingFirstCalls(m.detector, failing_calls), m.thresholds)
        for m in colour_models()
    ]
    lines: list[str] = []
    run = detect(root, items, models=flaky, out="flaky", log=lines.append, model_threads=model_threads)
    return run, lines


def _assert_same_tables(root: DataRoot, out: str, expected: str) -> None:
    pd.testing.assert_frame_equal(
        _sorted(read_detections(root.warehouse(out, BRAND))),
        _sorted(read_detections(root.warehouse(expected, BRAND))),
    )


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["creative_id", "frame_index", "object", "class_name", "x_min", "y_min"]
    return df.sort_values(keys).reset_index(drop=True)


def test_a_batch_that_fails_once_is_retried_to_the_same_table(root: DataRoot, brand_items: pd.DataFrame):
    reference = detect(root, brand_items, out="reference")
    # one model at a time, so the second model's first call comes only after the first model's failed one
    run, lines = _flaky_run(root, brand_items, failing_calls=1, model_threads=1)
    assert run.parts_written == reference.parts_written and run.errors.empty
    # each model fails its first call: batch 1 needs three attempts (the first try and both retries)
    retries = [line for line in lines if "retrying" in line]
    assert len(retries) == 2 and all("batch 1 attempt" in line for line in retries)
    _assert_same_tables(root, "flaky", "reference")


def test_a_batch_that_keeps_failing_is_an_error_row_and_the_others_are_committed(
    root: DataRoot, brand_items: pd.DataFrame
):
    from creative_assets.tables.warehouse import part_key, part_path

    reference = detect(root, brand_items, out="reference")
    key = part_key(part_files(root.warehouse("reference", BRAND))[0])
    part_path(root.warehouse("failing", BRAND), key).mkdir(parents=True)  # its part cannot be committed
    lines: list[str] = []
    run = detect(root, brand_items, out="failing", log=lines.append, max_retries=1)
    assert run.parts_written == reference.parts_written - 1
    failed = run.errors[run.errors["record"] == key]
    assert failed["stage"].tolist() == ["detection batch"]
    assert "IsADirectoryError" in failed["reason"].iloc[0]
    assert any("failed after 2 attempts" in line for line in lines)
    expected = read_detections(root.warehouse("reference", BRAND))
    pd.testing.assert_frame_equal(
        _sorted(read_detections(root.warehouse("failing", BRAND))),
        _sorted(expected[expected["batch"] != key]),
    )
    # the next run, with the obstacle gone, commits just that batch
    part_path(root.warehouse("failing", BRAND), key).rmdir()
    again = detect(root, brand_items, out="failing")
    assert (again.parts_written, again.parts_reused) == (1, reference.parts_written - 1)
    assert again.errors.empty


def test_detections_of_a_model_that_does_not_beat_the_baseline_are_flagged(
    root: DataRoot, brand_items: pd.DataFrame
) -> None:
    logo, product = colour_models()
    useless = LoadedModel(
        logo.object_name, logo.model_id, logo.detector, logo.thresholds, beats_baseline=False
    )
    detect(root, brand_items, models=[useless, product])
    table = read_detections(root.warehouse("detections", BRAND))
    flags = table.groupby("object")["model_beats_baseline"].unique().to_dict()
    assert {o: list(v) for o, v in flags.items()} == {"logo": [False], "product": [True]}
    assert table["model_beats_baseline"].dtype == bool


def test_a_changed_baseline_verdict_recomputes_the_batches(root: DataRoot, brand_items: pd.DataFrame) -> None:
    first = detect(root, brand_items)
    logo, product = colour_models()
    useless = LoadedModel(
        logo.object_name, logo.model_id, logo.detector, logo.thresholds, beats_baseline=False
    )
    again = detect(root, brand_items, models=[useless, product])
    assert again.parts_reused == 0 and again.parts_written == first.batches


def test_a_brand_without_creatives_leaves_a_zero_row_detections_partition(root: DataRoot) -> None:
    items = work_items(*[t.iloc[0:0] for t in build_brand(root, n_stills=1)])
    run = detect(root, items)
    assert run.batches == 0
    folder = root.warehouse("detections", BRAND)
    table = pd.read_parquet(folder)
    assert len(table) == 0 and list(table.columns) == [c for c in DETECTIONS.columns if c != "brand"]
    assert dict(table.dtypes.astype(str)) == {c: d for c, d in DETECTIONS.dtypes.items() if c != "brand"}
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{folder}/*.parquet')").fetchall() == [(0,)]


def test_deferred_models_load_only_when_a_batch_is_pending(root: DataRoot, brand_items: pd.DataFrame):
    loads: list[int] = []

    def load() -> list[LoadedModel]:
        loads.append(1)
        return colour_models()

    deferred = DeferredModels(tuple(m.describe() for m in colour_models()), load)
    first = detect(root, brand_items, models=deferred)
    assert len(loads) == 1 and first.parts_written == first.batches
    detect(root, brand_items, out="reference")
    pd.testing.assert_frame_equal(
        read_detections(root.warehouse("detections", BRAND)).drop(columns="batch"),
        read_detections(root.warehouse("reference", BRAND)).drop(columns="batch"),
    )
    again = detect(root, brand_items, models=deferred)
    assert len(loads) == 1 and again.parts_written == 0  # nothing pending: nothing loaded


def test_deferred_models_that_load_otherwise_than_described_are_refused(root: DataRoot, brand_items):
    described = tuple(m.describe() for m in colour_models("m1"))
    deferred = DeferredModels(described, lambda: colour_models("m2"))
    with pytest.raises(ValueError, match="logo/m1 loads as .*re-materialise chosen_model"):
        detect(root, brand_items, models=deferred)


class LargeColourBlobDetector(ColourBlobDetector):
    parameter_count = 100_000_000  # an X101-sized model, as far as the executor can tell


def test_large_models_on_a_cpu_decode_in_process_one_image_per_call(
    root: DataRoot, brand_items: pd.DataFrame, monkeypatch
) -> None:
    from creative_assets.detection import batch_detect

    workers: list[int] = []
    real = batch_detect.image_chunks

    def recording(dataset, chunks, loader_workers):
        workers.append(loader_workers)
        return real(dataset, chunks, loader_workers)

    monkeypatch.setattr(batch_detect, "image_chunks", recording)
    models = [
        LoadedModel(m.object_name, m.model_id, LargeColourBlobDetector(m.detector.classes), m.thresholds)
        for m in colour_models()
    ]
    detect(root, brand_items, models=models, out="large", loader_workers=2, images_per_forward=3)
    detect(root, brand_items, out="small", loader_workers=2, images_per_forward=3)
    assert workers == [0, 2]
    pd.testing.assert_frame_equal(
        read_detections(root.warehouse("large", BRAND)), read_detections(root.warehouse("small", BRAND))
    )
