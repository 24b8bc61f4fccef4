"""A real torchvision backend whose training fails for chosen ROI batch sizes (a stand-in for an OOM or a bad
node), counting its attempts in files so worker processes can be counted too. Module-level and plain, so it
pickles into spawned workers like the real backend."""

from __future__ import annotations

from pathlib import Path

from creative_assets.detection.torchvision_backend import TorchvisionBackend


class FlakyBackend(TorchvisionBackend):
    """Fails `fail_times` times (every time when None) for runs of the given BATCH_SIZE_PER_IMAGE values."""

    def __init__(self, counter_dir: Path, failing: tuple[int, ...], fail_times: int | None = None) -> None:
        super().__init__("cpu")
        self.counter_dir = Path(counter_dir)
        self.failing = failing
        self.fail_times = fail_times

    def attempts(self, batch_size_per_image: int) -> int:
        """How many times a run of this ROI batch size was started."""
        return len(list(self.counter_dir.glob(f"roi{batch_size_per_image}_*")))

    def train(self, train, classes, params, settings, out_dir, snapshot_iters=(), progress=None):
        bspi = params.batch_size_per_image
        self.counter_dir.mkdir(parents=True, exist_ok=True)
        attempt = self.attempts(bspi) + 1
        (self.counter_dir / f"roi{bspi}_{attempt}").touch()
        if bspi in self.failing and (self.fail_times is None or attempt <= self.fail_times):
            raise MemoryError(f"simulated out of memory in the run of ROI batch {bspi} (attempt {attempt})")
        return super().train(train, classes, params, settings, out_dir, snapshot_iters, progress)
