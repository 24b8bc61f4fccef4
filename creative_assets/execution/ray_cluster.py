"""Connecting to Ray for the `ray` executor: a running cluster named by address, or a local one on the fly.

An explicit address wins, then `RAY_ADDRESS` (e.g. `ray://head:10001`, `auto`, `host:6379`); with neither, a
local Ray is started in this process with `num_cpus` CPUs (Ray's default, every core, when None) and lives as
long as the process. A process already connected keeps its connection, whatever address is asked for.

Shared storage: Ray workers read the data root and write trial files and Parquet parts themselves, nothing
is shipped back through the driver. On a cluster of several machines the data root must therefore be on
storage every node mounts at the same path (NFS, a mounted bucket); a local cluster has that for free.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType

RAY_ADDRESS_ENV = "RAY_ADDRESS"
INSTALL_HINT = 'pip install -e ".[ray]"'


def import_ray() -> ModuleType:
    """The `ray` module; an ImportError that says how to install it when it is missing."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"the ray executor (settings executor: ray) needs Ray with Tune and Data: {INSTALL_HINT}"
        ) from err
    return ray


def connect(
    address: str | None = None, *, num_cpus: int | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Connect this process to Ray (address, else `RAY_ADDRESS`, else a new local Ray); the GCS address."""
    ray = import_ray()
    if not ray.is_initialized():
        env = os.environ if env is None else env
        target = address or env.get(RAY_ADDRESS_ENV) or None
        if target:
            ray.init(address=target, ignore_reinit_error=True)
        else:
            # "local" starts a new cluster even when RAY_ADDRESS is set in os.environ but not in `env`
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True)
    return str(ray.get_runtime_context().gcs_address)


def cluster_gpus() -> float:
    """GPUs in the connected cluster (0 when it has none)."""
    return float(import_ray().cluster_resources().get("GPU", 0.0))


def cluster_cpus() -> float:
    """CPUs in the connected cluster."""
    return float(import_ray().cluster_resources().get("CPU", 0.0))
