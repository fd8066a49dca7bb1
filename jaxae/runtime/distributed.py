"""Multi-host runs through JAX's own runtime; global arrays built from each process's slice."""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import NamedSharding

from jaxae.config import ConfigError

# Variables `jax.distributed.initialize()` does not read itself; we read them for it.
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Joins a multi-process run when asked; returns True if `jax.distributed` was initialized.

    Asked means: a coordinator address (flag or $JAX_COORDINATOR_ADDRESS) — then the number of
    processes and this process's id come from the flags or $JAX_NUM_PROCESSES/$JAX_PROCESS_ID —
    or `auto=True`, which lets JAX detect a cluster (SLURM, Open MPI, Kubernetes, Cloud TPU).
    Must run before anything touches a device.
    """
    coordinator_address = coordinator_address or os.environ.get(ENV_COORDINATOR)
    if num_processes is None and os.environ.get(ENV_NUM_PROCESSES):
        num_processes = _env_int(ENV_NUM_PROCESSES)
    if process_id is None and os.environ.get(ENV_PROCESS_ID):
        process_id = _env_int(ENV_PROCESS_ID)
    if not coordinator_address and not auto:
        if num_processes not in (None, 1) or process_id not in (None, 0):
            raise ConfigError(
                "--num_processes/--process_id need a coordinator: add "
                "--coordinator_address=HOST:PORT (the address of process 0)"
            )
        return False
    if coordinator_address and (num_processes is None or process_id is None):
        raise ConfigError(
            f"coordinator {coordinator_address} given without the process count or this "
            f"process's id; add --num_processes=N --process_id=I (or set ${ENV_NUM_PROCESSES} "
            f"and ${ENV_PROCESS_ID})"
        )
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ConfigError(
            f"--process_id {process_id} is outside 0..{num_processes - 1}; give each process "
            f"its own id below --num_processes"
        )
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
    return True


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except ValueError:
        value = os.environ[name]
        raise ConfigError(f"${name}={value!r} is not an integer; set it to one") from None


def is_chief() -> bool:
    """True on the one process that writes logs, config.json and summary.json."""
    return jax.process_index() == 0


def process_rows(sharding: NamedSharding, shape: tuple[int, ...]) -> slice:
    """The rows of a global array of `shape` that this process's devices hold under `sharding`."""
    index_map = sharding.addressable_devices_indices_map(shape)
    rows = [idx[0] for idx in index_map.values()]
    start = min(r.start or 0 for r in rows)
    stop = max(shape[0] if r.stop is None else r.stop for r in rows)
    return slice(start, stop)


def to_global(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global jax.Array [N, ...] from a host array every process holds in full.

    Each process hands JAX only the rows its own devices hold (its slice of the batch), through
    `jax.make_array_from_process_local_data`; on one process this is a plain sharded transfer.
    """
    x = np.asarray(x)
    local = x if sharding.is_fully_replicated else x[process_rows(sharding, x.shape)]
    return jax.make_array_from_process_local_data(sharding, local, x.shape)
