"""Detection on Ray Data with two smoke-trained torchvision checkpoints: the same parts and table as
run_detection, resume after a killed driver, failed batches as error rows.

Also a script: `python -m creative_assets_tests.execution.test_ray_detect ADDRESS ROOT ITEMS SPECS OUT` runs
the test brand's detection on the Ray cluster at ADDRESS, so a test can kill that driver mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from creative_assets.detection.backend import TrialParams
from creative_assets.detection.batch_detect import run_detection
from creative_assets.detection.batch_rows import LoadedModel
from creative_assets.detection.batches import work_items
from creative_assets.detection.torchvision_backend import TorchvisionBackend
from creative_assets.execution.ray_detect import ModelSpec, as_model_spec, checkpoint_path, run_detection_ray
from creative_assets.layout import DataRoot, PathEscapeError
from creative_assets.settings import build_settings
from creative_assets.tables.warehouse import (
    part_files,
    part_key,
    part_path,
    read_detection_errors,
    read_detections,
)
from creative_assets_tests.support.coco_builders import write_toy_coco
from creative_assets_tests.support.colour_brand import BRAND, build_brand

REPO = Path(__file__).resolve().parents[2]
OPTIONS = {"batch_size": 3, "images_per_forward": 2, "score_floor": 0.05}
FLOAT_COLUMNS = ["score", "x_min", "y_min", "x_max", "y_max", "box_area_frac"]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray of two CPUs for this module, shut down at its end; its tests skip without Ray."""
    ray = pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def brand(tmp_path_factory):
    """Two smoke-trained checkpoints (logo; logo + product), 40 stills (one corrupt) and a video's 4 frames,
    and run_detection's parts of them in `warehouse/local`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = DataRoot(tmp_path_factory.mktemp("ray_detect") / "data")
    split = write_toy_coco(root.root / "splits")
    settings = build_settings(root.root, "smoke", {"train": {"device": "cpu"}})
    backend = TorchvisionBackend("cpu")
    specs = []
    for object_name, classes in (("logo", ["logo"]), ("branding", ["logo", "product"])):
        folder = root.models(BRAND, object_name)
        trained = backend.train(split, classes, TrialParams(2, 16), settings.train, folder)
        checkpoint = root.relative(trained.checkpoints[2])
        specs.append(ModelSpec(object_name, "m1", "torchvision", checkpoint, dict.fromkeys(classes, 0.3)))
    manifest, frames = build_brand(root, n_stills=40)
    (root.creatives(BRAND) / "img/07.jpg").write_bytes(b"not a JPEG")
    items = work_items(manifest, frames)
    models = [
        LoadedModel(s.object_name, s.model_id, backend.load(root.resolve_inside(s.checkpoint)), s.thresholds)
        for s in specs
    ]
    local = root.warehouse("local", BRAND)
    run_detection(root, BRAND, items, models, local, loader_workers=0, errors_dir=errors_of(local), **OPTIONS)
    torch.set_num_threads(threads)
    return root, items, specs


def errors_of(out: Path) -> Path:
    """Each output folder keeps its own errors folder beside it, so the tests' runs stay apart."""
    return out.parent.parent / f"{out.parent.name}_errors" / out.name


def detect_on_ray(root: DataRoot, items: pd.DataFrame, specs, out: str, **kwargs):
    folder = root.warehouse(out, BRAND)
    return run_detection_ray(
        root, BRAND, items, specs, folder, errors_dir=errors_of(folder), **OPTIONS, **kwargs
    )


def assert_same_detections(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert len(ours) == len(theirs) > 0
    exact = [c for c in ours.columns if c not in FLOAT_COLUMNS]
    pd.testing.assert_frame_equal(ours[exact], theirs[exact])
    pd.testing.assert_frame_equal(ours[FLOAT_COLUMNS], theirs[FLOAT_COLUMNS], rtol=1e-5, atol=1e-4)


def part_stats(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in part_files(folder)}


def test_ray_detection_writes_the_parts_and_table_of_run_detection(ray_cluster, brand):
    root, items, specs = brand
    run = detect_on_ray(root, items, specs, "ray", num_actors=2)
    local, ours = root.warehouse("local", BRAND), root.warehouse("ray", BRAND)
    assert [p.name for p in part_files(ours)] == [p.name for p in part_files(local)]
    assert run.parts_written == run.batches == len(part_files(local)) > 1
    assert_same_detections(read_detections(ours), read_detections(local))
    pd.testing.assert_frame_equal(run.errors, read_detection_errors(errors_of(local)))
    assert run.errors["file"].tolist() == ["raw/acme/creatives/img/07.jpg"]


def test_rerun_reuses_every_part_and_starts_no_work(ray_cluster, brand):
    root, items, specs = brand
    out = root.warehouse("rerun", BRAND)
    first = detect_on_ray(root, items, specs, "rerun", num_actors=1)
    before = part_stats(out)
    # class names given in the specs key the batches as the ones read from the checkpoints did
    named = [replace(s, classes=tuple(s.thresholds)) for s in specs]
    again = detect_on_ray(root, items, named, "rerun", num_actors=1)
    assert (again.parts_written, again.parts_reused, again.images) == (0, first.batches, 0)
    assert part_stats(out) == before and again.rows == first.rows


def test_killed_driver_resumes_without_loss_or_duplicates(ray_cluster, brand, tmp_path):
    root, items, specs = brand
    items_file, specs_file = tmp_path / "items.parquet", tmp_path / "specs.json"
    items.to_parquet(items_file)
    specs_file.write_text(
        json.dumps([[s.object_name, s.model_id, s.backend, s.checkpoint, s.thresholds] for s in specs])
    )
    out = root.warehouse("killed", BRAND)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    script = ["-m", "creative_assets_tests.execution.test_ray_detect"]
    arguments = [ray_cluster, str(root.root), str(items_file), str(specs_file), str(out)]
    command = [sys.executable, *script, *arguments]
    proc = subprocess.Popen(command, env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + 90
        while not part_files(out):
            assert proc.poll() is None, "the detection driver ended before committing a part"
            assert time.monotonic() < deadline, "no part committed within 90 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    committed = part_stats(out)
    total = len(part_files(root.warehouse("local", BRAND)))
    assert 1 <= len(committed) < total

    resumed = detect_on_ray(root, items, specs, "killed", num_actors=1)
    assert resumed.parts_reused >= len(committed)
    assert resumed.parts_reused + resumed.parts_written == resumed.batches == total
    after = part_stats(out)
    assert {name: after[name] for name in committed} == committed
    table = read_detections(out)
    assert not table.duplicated().any()
    assert_same_detections(table, read_detections(root.warehouse("local", BRAND)))


def test_a_batch_that_keeps_failing_is_an_error_row_and_the_others_are_kept(ray_cluster, brand):
    root, items, specs = brand
    out = root.warehouse("failing", BRAND)
    key = part_key(part_files(root.warehouse("local", BRAND))[0])
    part_path(out, key).mkdir(parents=True)  # the batch's part cannot be committed over a folder
    run = detect_on_ray(root, items, specs, "failing", num_actors=1, max_retries=1)
    assert run.parts_written == run.batches - 1
    failed = run.errors[run.errors["record"] == key]
    assert failed["file"].tolist() == [f"warehouse/failing/brand=acme/part-{key}.parquet"]
    assert failed["stage"].tolist() == ["detection batch"]
    assert "IsADirectoryError" in failed["reason"].iloc[0]
    reference = read_detections(root.warehouse("local", BRAND))
    assert_same_detections(read_detections(out), reference[reference["batch"] != key].reset_index(drop=True))

    part_path(out, key).rmdir()
    retried = detect_on_ray(root, items, specs, "failing", num_actors=1)
    assert (retried.parts_written, retried.parts_reused) == (1, run.batches - 1)
    pd.testing.assert_frame_equal(
        retried.errors, read_detection_errors(errors_of(root.warehouse("local", BRAND)))
    )
    assert_same_detections(read_detections(out), reference)


def test_model_spec_from_a_tuple_keeps_every_field():
    spec = as_model_spec(("logo", "m1", "torchvision", Path("models/a/model.pth"), {"logo": 0.4}, ["logo"]))
    assert spec == ModelSpec("logo", "m1", "torchvision", "models/a/model.pth", {"logo": 0.4}, ("logo",))
    assert as_model_spec(spec) is spec
    with pytest.raises(ValueError, match="a model spec is"):
        as_model_spec(("logo", "m1"))


def test_checkpoint_outside_the_data_root_is_refused(tmp_path):
    root = DataRoot(tmp_path / "data")
    assert checkpoint_path(root, "models/a/model.pth") == root.root / "models/a/model.pth"
    with pytest.raises(PathEscapeError):
        checkpoint_path(root, "../elsewhere/model.pth")
    with pytest.raises(PathEscapeError):
        checkpoint_path(root, tmp_path / "elsewhere" / "model.pth")


def main(argv: list[str]) -> None:
    """Detect the test brand on the Ray cluster at ADDRESS with one actor (see the module docstring)."""
    address, data_root, items_file, specs_file, out_dir = argv
    run_detection_ray(
        DataRoot(Path(data_root)),
        BRAND,
        pd.read_parquet(items_file),
        json.loads(Path(specs_file).read_text()),
        Path(out_dir),
        errors_dir=errors_of(Path(out_dir)),
        address=address,
        num_actors=1,
        **OPTIONS,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
