"""benchmarks/bench_gpu.py on a CPU with the tiny model: the results file it writes, and fp32 paths that agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


def load_bench():
    """The benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load_bench()


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One CPU run: 4 stills of 160×120 and an MP4 of 20 frames (stride 10 → frames 0 and 10), tiny model."""
    import torch

    tmp = tmp_path_factory.mktemp("bench_gpu")
    out = tmp / "results.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bench.main(
            [
                "--device", "cpu", "--profile", "smoke", "--arch", "tiny", "--no-amp",
                "--images", "4", "--size", "160x120", "--video-frames", "20", "--warmup", "2",
                "--train-iters", "1", "--train-warmup", "1", "--root", str(tmp / "run"), "--out", str(out),
            ]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return json.loads(out.read_text())


def test_results_file_has_speed_memory_agreement_and_training_fields(smoke_results: dict) -> None:
    for key in (
        "device",
        "device_name",
        "architecture",
        "loop_path",
        "our_path",
        "speedup",
        "agreement",
        "train",
    ):
        assert key in smoke_results
    for path in ("loop_path", "our_path"):
        stats = smoke_results[path]
        for key in ("images_per_s", "seconds", "gpu_util_mean", "peak_gpu_mem_mib", "detections"):
            assert key in stats
        assert stats["images_per_s"] > 0
        assert stats["peak_gpu_mem_mib"] is None  # a CPU run has no GPU memory to report
    assert smoke_results["device_name"] == "cpu"
    assert smoke_results["architecture"] == "tiny"
    ratio = smoke_results["our_path"]["images_per_s"] / smoke_results["loop_path"]["images_per_s"]
    assert smoke_results["speedup"] == pytest.approx(ratio)


def test_both_paths_detect_the_stills_and_every_tenth_video_frame(smoke_results: dict) -> None:
    images = smoke_results["images"]
    assert images["video_frames_detected"] == 2
    assert images["ours"] == images["loop"] == 4 + 2


def test_fp32_loop_and_batched_path_agree_on_every_compared_detection(smoke_results: dict) -> None:
    agreement = smoke_results["agreement"]
    assert agreement["compared"] > 0
    assert agreement["fraction"] == 1.0


def test_training_estimate_counts_one_shared_run_per_roi_batch_size(smoke_results: dict) -> None:
    train = smoke_results["train"]
    # smoke grid: MAX_ITER {2, 4} × BATCH_SIZE_PER_IMAGE {16, 32}
    assert train["grid_runs_per_object"] == 2
    assert train["grid_iterations_per_object"] == 2 * 4
    assert train["grid_iterations_per_object_unshared"] == 2 * (2 + 4)
    assert train["seconds_per_iter"] > 0


def _one(box: list[float], score: float, label: int = 0):
    return bench.Predictions(np.array([box], np.float32), np.array([score], np.float32), np.array([label]))


def test_a_match_needs_the_same_class_iou_of_at_least_0_9_and_scores_within_0_02() -> None:
    reference = _one([0, 0, 10, 10], 0.5)
    assert bench.match_image(reference, _one([0, 0, 10, 9], 0.515), 20, 0.9, 0.02)[0] == 1  # IoU 90/100
    assert bench.match_image(reference, _one([0, 0, 10, 8.9], 0.5), 20, 0.9, 0.02)[0] == 0  # IoU 0.89
    assert bench.match_image(reference, _one([0, 0, 10, 10], 0.53), 20, 0.9, 0.02)[0] == 0
    assert bench.match_image(reference, _one([0, 0, 10, 10], 0.5, label=1), 20, 0.9, 0.02)[0] == 0
