"""Models side by side on CPU threads: the same predictions as one after another, errors raised, GPU alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from creative_assets.detection.architectures import build_model
from creative_assets.detection.backend import Predictions
from creative_assets.detection.model_threads import ModelThreads, model_threads, split
from creative_assets.detection.torchvision_backend import TorchvisionDetector
from creative_assets.settings import build_settings


def tiny_detectors(tmp_path, count: int) -> list[TorchvisionDetector]:
    settings = build_settings(tmp_path, "smoke", {"train": {"device": "cpu"}}).train
    detectors = []
    for seed in range(count):
        torch.manual_seed(seed)
        model, _ = build_model("tiny", 1, settings, 16)
        detectors.append(TorchvisionDetector(model, [f"object{seed}"], "cpu", amp=False, meta={}))
    return detectors


def images(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(count):
        image = rng.integers(0, 80, (96 + 8 * i, 128, 3), dtype=np.uint8)  # sizes differ: padding in a batch
        image[20:60, 30:90] = rng.integers(120, 256, 3, dtype=np.uint8)
        out.append(image)
    return out


@pytest.mark.parametrize(("count", "parts"), [(8, 2), (5, 2), (3, 4), (1, 2), (7, 3), (4, 1)])
def test_split_covers_the_range_in_order_with_pieces_one_apart(count, parts):
    pieces = split(count, parts)
    assert [i for p in pieces for i in p] == list(range(count))
    assert len(pieces) == min(parts, count) and all(len(p) > 0 for p in pieces)
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_models_side_by_side_predict_what_they_predict_one_after_another(tmp_path):
    detectors = tiny_detectors(tmp_path, 3)
    batch = images(5)
    sequential = [d.predict(batch, score_floor=0.05) for d in detectors]
    with ModelThreads(2) as threads:
        side_by_side = threads.predict(detectors, batch, 0.05)
    assert len(side_by_side) == 3 and all(len(per_model) == 5 for per_model in side_by_side)
    found = 0
    for seq_model, par_model in zip(sequential, side_by_side, strict=True):
        for seq, par in zip(seq_model, par_model, strict=True):
            # one torch thread against the test's own setting: the same boxes up to float rounding
            np.testing.assert_allclose(par.boxes, seq.boxes, atol=1e-3)
            np.testing.assert_allclose(par.scores, seq.scores, atol=1e-5)
            np.testing.assert_array_equal(par.labels, seq.labels)
            found += len(seq.scores)
    assert found > 0  # random-init models still propose boxes: the comparison compared something


class Recording:
    """A detector that records which thread ran which images and fails on a chosen image."""

    backend = "recording"
    device = "cpu"
    classes = ["thing"]

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on
        self.calls: list[tuple[str, list[int]]] = []
        self.lock = threading.Lock()

    def predict(self, batch: Sequence[np.ndarray], score_floor: float = 0.0) -> list[Predictions]:
        ids = [int(image[0, 0, 0]) for image in batch]
        with self.lock:
            self.calls.append((threading.current_thread().name, ids))
        if self.fail_on in ids:
            raise OSError(f"cannot read image {self.fail_on}")
        return [
            Predictions(np.array([[i, i, i + 1.0, i + 1.0]]), np.array([0.5]), np.array([0])) for i in ids
        ]


def numbered(count: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), i, np.uint8) for i in range(count)]


def test_one_model_on_three_threads_gets_the_chunk_in_pieces_and_results_keep_their_order():
    detector = Recording()
    with ModelThreads(3) as threads:
        (out,) = threads.predict([detector], numbered(8), 0.0)
    assert [float(p.boxes[0, 0]) for p in out] == list(range(8))
    pieces = sorted(ids for _, ids in detector.calls)
    assert [i for piece in pieces for i in piece] == list(range(8))
    assert sorted(map(len, pieces)) == [2, 3, 3]
    assert all(name.startswith("detect") for name, _ in detector.calls)


def test_five_models_on_two_threads_get_the_whole_chunk_on_the_threads():
    detectors = [Recording() for _ in range(5)]
    with ModelThreads(2) as threads:
        out = threads.predict(detectors, numbered(6), 0.0)
    assert all([float(p.boxes[0, 0]) for p in per_model] == list(range(6)) for per_model in out)
    assert all([ids for _, ids in d.calls] == [list(range(6))] for d in detectors)
    assert all(name.startswith("detect") for d in detectors for name, _ in d.calls)


def test_a_chunk_started_before_the_last_is_collected_keeps_each_chunks_results():
    detectors = [Recording() for _ in range(3)]
    with ModelThreads(2) as threads:
        first = threads.submit(detectors, numbered(4), 0.0)
        second = threads.submit(detectors, numbered(7)[4:], 0.0)
        assert [[float(p.boxes[0, 0]) for p in m] for m in first()] == [[0, 1, 2, 3]] * 3
        assert [[float(p.boxes[0, 0]) for p in m] for m in second()] == [[4, 5, 6]] * 3


def test_a_failing_model_raises_its_own_error_and_the_threads_go_on():
    detectors = [Recording(), Recording(fail_on=5), Recording()]
    with ModelThreads(2) as threads:
        with pytest.raises(OSError, match="cannot read image 5"):
            threads.predict(detectors, numbered(8), 0.0)
        # the pool is still usable for the retry
        out = threads.predict([Recording()], numbered(3), 0.0)
    assert len(out[0]) == 3


def test_one_thread_runs_in_the_calling_thread():
    detector = Recording()
    ModelThreads(1).predict([detector], numbered(3), 0.0)
    assert detector.calls == [(threading.current_thread().name, [0, 1, 2])]


def test_models_on_a_gpu_run_one_at_a_time_and_a_cpu_uses_what_is_asked():
    class OnGpu(Recording):
        device = "cuda"

    assert model_threads(None, [Recording(), OnGpu()]) == 1
    assert model_threads(3, [Recording()]) == 3
    assert model_threads(None, [Recording()]) >= 1
    with pytest.raises(ValueError, match="≥ 1"):
        ModelThreads(0)


def test_large_models_on_a_cpu_run_one_at_a_time_one_image_per_call():
    class Large(Recording):
        parameter_count = 100_000_000

    detectors = [Large(), Large()]
    threads = ModelThreads.for_models(None, detectors)
    assert (threads.threads, threads.images_per_call) == (1, 1)
    out = threads.predict(detectors, numbered(3), 0.0)
    assert [[float(p.boxes[0, 0]) for p in per_model] for per_model in out] == [[0, 1, 2], [0, 1, 2]]
    assert [ids for _, ids in detectors[0].calls] == [[0], [1], [2]]


def test_small_models_on_a_cpu_use_the_cores_and_whole_pieces():
    threads = ModelThreads.for_models(None, [Recording(), Recording()])
    assert threads.images_per_call is None
    assert threads.threads == model_threads(None, [Recording()])
    threads.close()
