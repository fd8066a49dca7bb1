"""Data parallelism: the one pure train step under jit + NamedSharding (SPMD) or shard_map + pmean.

Both modes split the batch over a 1-axis mesh `data` and replicate the train state; both give
the single-device result to float tolerance. The lax.scan epoch over a device-resident dataset
lives here too, since it only changes how batches reach the same step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxae.fast import process as tuning
from jaxae.runtime.programs import OFF, ProgramStore

AXIS = "data"  # the mesh axis the batch is split over
MODES = ("jit", "pmap")

Step = Callable[[Any, jax.Array, jax.Array], tuple[Any, dict[str, jax.Array]]]


def make_mesh(devices: list | None = None) -> Mesh:
    """A 1-axis mesh `data` over `devices` (default: every device of every process)."""
    return Mesh(np.array(jax.devices() if devices is None else devices), (AXIS,))


def sync(tree: Any, axis_name: str | None) -> Any:
    """Mean of every leaf over `axis_name` (a no-op when None): grads, metrics, BN statistics."""
    if axis_name is None:
        return tree
    return jax.tree.map(lambda a: lax.pmean(a, axis_name), tree)


def device_rng(rng: jax.Array, axis_name: str | None) -> jax.Array:
    """Under shard_map each device draws its own dropout/noise: fold in the device's index."""
    if axis_name is None:
        return rng
    return jax.random.fold_in(rng, lax.axis_index(axis_name))


def shard_step(step: Step, mesh: Mesh) -> Step:
    """`step` (written with axis_name=AXIS) per device under shard_map: batch [B/n] per device.

    The step itself calls `sync` on gradients, metrics and BatchNorm statistics, so the state
    that comes out is replicated, as the out_specs say.
    """
    return jax.shard_map(
        step,
        mesh=mesh,
        in_specs=(P(), P(AXIS), P()),
        out_specs=(P(), P()),
        check_vma=False,
    )


def compile_step(step: Step, mesh: Mesh, *, fast: bool = False) -> Step:
    """jit with the batch split over the mesh, state and metrics replicated, state donated.

    With `fast`, compiled with the fast ops' XLA options (XLA's own convolutions on CPU).
    """
    replicated, batch = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS))
    return jax.jit(
        step,
        in_shardings=(replicated, batch, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
        compiler_options=tuning.step_compiler_options(fast),
    )


def epoch_permutation(key: jax.Array, epoch: jax.Array | int, n: int) -> jax.Array:
    """The example order [n] of `epoch`: a pure function of (key, epoch), so resume is exact.

    The host iterator and the on-device epoch both call this, so both see the same batches.
    """
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def batch_indices(perm: jax.Array, i: jax.Array | int, batch_size: int) -> jax.Array:
    """Indices [batch_size] of batch `i` of an epoch, sorted (contiguous reads on the host)."""
    return jnp.sort(lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size))


def make_scan_dispatch(
    step: Step,
    mesh: Mesh,
    data_key: jax.Array,
    batch_size: int,
    steps_per_epoch: int,
    *,
    fast: bool = False,
    programs: ProgramStore = OFF,
) -> Callable[[Any, jax.Array, jax.Array, int], tuple[Any, dict[str, jax.Array]]]:
    """`dispatch(state, images, rng, length) -> (state, metrics [length])`: `length` steps in one
    call, by lax.scan over batches gathered from `images` [N, H, W, C] (uint8, on the device).

    The batches must lie in one epoch (the caller cuts dispatches at epoch ends): the epoch's
    permutation is drawn once per dispatch, from `data_key` and the epoch number, on the device.
    The compiled epochs go through `programs` (kept across runs; off by default).
    """
    batch_sharding = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())

    def dispatch(state, images, rng, length: int):
        n = images.shape[0]
        perm = epoch_permutation(data_key, state.step // steps_per_epoch, n)

        def body(state, _):
            idx = batch_indices(perm, state.step % steps_per_epoch, batch_size)
            batch = lax.with_sharding_constraint(images[idx], batch_sharding)
            return step(state, batch, rng)

        return lax.scan(body, state, None, length=length)

    jitted = jax.jit(
        dispatch,
        in_shardings=(replicated, replicated, replicated),
        out_shardings=(replicated, replicated),
        static_argnums=3,
        donate_argnums=0,
        compiler_options=tuning.step_compiler_options(fast),
    )
    jitted = programs.wrap("scan_epoch", jitted, static_argnums=(3,))

    def run(state, images, rng, length: int):
        # unrolled, the threefry of a scan epoch compiles 1-1.5 s longer and steps no faster
        with tuning.threefry_lowering(unroll=False, fast=fast):
            return jitted(state, images, rng, length)

    return run


def use_scan_epoch(
    mode: str, params: Any, nbytes: int, canonical: Callable[[], bool] | None = None
) -> bool:
    """Whether train.py runs lax.scan epochs on a device-resident training set of `nbytes`
    (`scan_epoch_choice` without its reason)."""
    return scan_epoch_choice(mode, params, nbytes, canonical)[0]


def scan_epoch_choice(
    mode: str, params: Any, nbytes: int, canonical: Callable[[], bool] | None = None
) -> tuple[bool, str]:
    """(scan, why) for the start-up line: lax.scan epochs on a device-resident training set?

    mode 'on'/'off' decides (an 'on' that does not fit falls back to the host iterator). 'auto'
    scans every model on GPU and TPU, which saves a host dispatch per step (not measured yet;
    benchmarks/accelerator.py measures both). On XLA:CPU it scans fully connected models (their
    steps 12-25% faster in a scan, benchmarks/ATTEMPTS.md attempt 7), and models with
    convolutions (a kernel of rank > 2) only where `canonical()` says every convolution of the
    train step is in XLA:CPU's canonical form (`canonical_convolutions`): XLA:CPU rewrites
    other forms into it only outside loops, so inside a scan they run in a slow generic loop
    (a kernel gradient 325 against 3.7 ms; attempt 31), while steps of canonical ones run as
    fast in a scan as dispatched one by one or up to 30% faster (conv_vae 22.2 against 25.1 ms).
    """
    if mode == "off":
        return False, "scan_epoch=off"
    if not fits_on_device(nbytes):
        return False, "the training set exceeds a quarter of device memory"
    if mode == "on":
        return True, "scan_epoch=on"
    backend = jax.default_backend()
    if backend != "cpu":
        return True, f"auto: {backend} backend, one dispatch per epoch (unmeasured)"
    if not any(leaf.ndim > 2 for leaf in jax.tree.leaves(params)):
        return True, "auto: fully connected steps on XLA:CPU run faster in a scan"
    if canonical is not None and canonical():
        return True, "auto: every convolution in XLA:CPU's canonical form runs faster in a scan"
    return False, "auto: convolutions outside XLA:CPU's canonical form run slower in a scan"


# lax's dimension numbers of XLA:CPU's canonical convolution: NHWC input, HWIO kernel, NHWC output
_CANONICAL = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))


def canonical_convolutions(step: Step, *args: Any, axis_env: Any = ()) -> bool:
    """Whether every convolution in the jaxpr of `step(*args)` (abstract arguments suffice),
    its derivatives included, has the canonical NHWC/HWIO/NHWC dimension numbers.

    XLA:CPU runs a convolution with its fast library kernels only in that form, and its pass
    that rewrites the others into it visits the top-level program alone, not loop bodies.
    `axis_env`: [(name, size)] for a step with collectives over a pmap axis.
    """
    jaxpr = jax.make_jaxpr(step, axis_env=list(axis_env))(*args)
    return all(
        eqn.params["dimension_numbers"] == _CANONICAL
        for eqn in _equations(jaxpr.jaxpr)
        if eqn.primitive.name == "conv_general_dilated"
    )


def _equations(jaxpr: Any):
    """Every equation of `jaxpr` and of the jaxprs nested in its equations' parameters."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def fits_on_device(nbytes: int, fraction: float = 0.25) -> bool:
    """True when `nbytes` (one replica of the training set) is under `fraction` of the memory
    of the smallest local device. CPU devices report no limit: host memory holds the data anyway."""
    limits = []
    for device in jax.local_devices():
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        if stats and stats.get("bytes_limit"):
            limits.append(stats["bytes_limit"])
    return not limits or nbytes <= fraction * min(limits)
