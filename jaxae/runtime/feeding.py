"""Feeding the train step: a host iterator with prefetch, or lax.scan over a device-resident set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxae.runtime import distributed, parallel
from jaxae.runtime.programs import OFF, ProgramStore

_host_permutation = jax.jit(parallel.epoch_permutation, static_argnums=2)


def host_batches(
    images: np.ndarray, batch_size: int, data_key: jax.Array, start_step: int
) -> Iterator[np.ndarray]:
    """Batches [B, H, W, C] for steps start_step, start_step + 1, ... (drop the remainder).

    The same batches, in the same order, as the on-device epoch (`parallel.make_scan_dispatch`).
    """
    steps_per_epoch = len(images) // batch_size
    step = start_step
    perm, perm_epoch = None, -1
    while True:
        epoch, i = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:
            perm = np.asarray(_host_permutation(data_key, epoch, len(images)))
            perm_epoch = epoch
        yield images[np.sort(perm[i * batch_size : (i + 1) * batch_size])]
        step += 1


def prefetch(iterator: Iterator[np.ndarray], sharding, size: int = 2) -> Iterator[jax.Array]:
    """Keeps `size` batches in flight to the device(s) while the current step runs.

    Each process transfers only its own slice of every batch (distributed.to_global).
    """
    queue = []
    for batch in iterator:
        queue.append(distributed.to_global(batch, sharding))
        if len(queue) > size:
            yield queue.pop(0)


class Feeder:
    """Runs the train step for a range of steps: one compiled step per call with batches from
    the host, or (`on_device`) one lax.scan per call over the training set sent to the device(s)
    once. Both see the same batches in the same order; `end(step)` says where a call stops.
    """

    def __init__(
        self,
        step_fn: Any,
        mesh: Mesh,
        images: np.ndarray,
        *,
        batch_size: int,
        data_key: jax.Array,
        start_step: int,
        on_device: bool,
        max_steps: int,
        boundaries: tuple[int, ...],
        fast: bool = False,
        programs: ProgramStore = OFF,
    ):
        self.on_device, self.max_steps, self.boundaries = on_device, max_steps, boundaries
        self.steps_per_epoch = len(images) // batch_size
        if on_device:
            self._scan = parallel.make_scan_dispatch(
                step_fn,
                mesh,
                data_key,
                batch_size,
                self.steps_per_epoch,
                fast=fast,
                programs=programs,
            )
            self._images = distributed.to_global(images, NamedSharding(mesh, P()))
        else:
            step = parallel.compile_step(step_fn, mesh, fast=fast)
            self._step = programs.wrap("train_step", step)
            batches = host_batches(images, batch_size, data_key, start_step)
            self._batches = prefetch(batches, NamedSharding(mesh, P(parallel.AXIS)))

    def end(self, step: int, total_steps: int) -> int:
        """The last step of the call after `step`: the next step, or for a scan the next epoch
        end, boundary (evaluation, checkpoint) or `max_steps` later, whichever comes first."""
        if not self.on_device:
            return step + 1
        end = step + (self.max_steps or self.steps_per_epoch)
        for every in (self.steps_per_epoch, *self.boundaries):
            end = min(end, (step // every + 1) * every)
        return min(end, total_steps)

    def __call__(self, state: Any, first: int, last: int, rng: jax.Array) -> tuple[Any, Any]:
        """Steps first..last (1-based update counts): (state, metrics; leaves [n] for a scan)."""
        if self.on_device:
            return self._scan(state, self._images, rng, last - first + 1)
        return self._step(state, next(self._batches), rng)
