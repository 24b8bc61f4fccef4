import multiprocessing as mp
import time
from pathlib import Path

from creative_assets.locks import partition_lock


def _hold(folder: str, seconds: float, ready) -> None:
    with partition_lock(Path(folder)):
        ready.set()
        time.sleep(seconds)


def test_second_holder_waits_for_the_first(tmp_path: Path):
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_hold, args=(str(tmp_path), 1.5, ready))
    p.start()
    assert ready.wait(30)
    messages: list[str] = []
    with partition_lock(tmp_path, log=messages.append):
        pass
    p.join()
    assert messages and "waiting" in messages[0]


def test_lock_is_free_again_after_release(tmp_path: Path):
    with partition_lock(tmp_path):
        pass
    messages: list[str] = []
    with partition_lock(tmp_path, log=messages.append):
        pass
    assert messages == []
