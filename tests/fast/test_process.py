"""jaxae.tuning: freed memory reused without page faults, unrolled threefry with the same bits,
and the steps' CPU compile options (XLA's convolutions, same values)."""

import platform
import subprocess
import sys
import textwrap

import pytest
from conftest import train_mode_loss, ynn_fusion_bodies

# Runs a jitted function whose 64 MB intermediate is a fresh XLA temp buffer on every call,
# and prints the minor page faults of 5 calls (after 3 warm-up calls).
SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from jaxae.fast import process as tuning
    if sys.argv[1] == "tuned":
        assert tuning.reuse_freed_memory()
    import jax, jax.numpy as jnp
    a, b = jnp.ones((2048, 64)), jnp.ones((64, 8192))
    f = jax.jit(lambda a, b: jnp.sum(jnp.sin(a @ b), axis=0))
    for _ in range(3):
        f(a, b).block_until_ready()
    counts = []
    for _ in range(3):  # the fewest of 3 windows: the heap may still grow once early on
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            f(a, b).block_until_ready()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(min(counts))
    """
)


def run(script: str, mode: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
    )
    return out.stdout


def page_faults(mode: str) -> int:
    return int(run(SCRIPT, mode).split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_reuse_freed_memory_stops_page_faults_of_xla_temp_buffers():
    default, tuned = page_faults("default"), page_faults("tuned")
    # 5 calls × 64 MB of fresh pages is ~80,000 faults; reused memory faults (almost) never
    assert default > 20_000, default
    assert tuned < default / 20, (tuned, default)


# Random draws the way the models make them (fold_in, split, bernoulli, normal), printed
# bit-exactly, then whether the compiled program still has a while loop.
RANDOM_SCRIPT = textwrap.dedent(
    """
    import sys
    from jaxae.fast import process as tuning
    if sys.argv[1] == "tuned":
        assert tuning.unroll_threefry()
    import jax, numpy as np

    def draws(key):
        key = jax.random.fold_in(key, 7)
        a, b = jax.random.split(key)
        keep = jax.random.bernoulli(a, 0.8, (64, 33))
        noise = jax.random.normal(b, (5, 7))
        return keep, noise

    f = jax.jit(draws)
    keep, noise = f(jax.random.PRNGKey(3))
    print(np.packbits(np.asarray(keep)).tobytes().hex(), np.asarray(noise).tobytes().hex())
    print("while" in f.lower(jax.random.PRNGKey(3)).compile().as_text())
    """
)


def test_unrolled_threefry_draws_the_same_bits_without_a_loop():
    default, tuned = run(RANDOM_SCRIPT, "default").split(), run(RANDOM_SCRIPT, "tuned").split()
    assert default[:2] == tuned[:2]  # the same dropout mask and normal noise, bit for bit
    assert default[2] == "True" and tuned[2] == "False"


def test_step_compiler_options_swap_in_xla_convolutions_with_the_same_values():
    """On CPU the steps compile convolutions with XLA's own kernels, not YNNPACK's; the
    gradients of conv_deep (convs, phase transposed convs, BatchNorm, max-pool) agree."""
    import jax
    import numpy as np

    from jaxae.fast import process as tuning

    if jax.default_backend() != "cpu":
        pytest.skip("the options are for XLA:CPU")
    options = tuning.step_compiler_options()
    assert options  # this jaxlib accepts them; a rename would silently drop the speed-up
    loss, args = train_mode_loss("conv_deep")
    grad = jax.value_and_grad(loss)
    default = jax.jit(grad).lower(*args).compile()
    tuned = jax.jit(grad, compiler_options=options).lower(*args).compile()

    def ynn_convolutions(compiled) -> int:
        """How many YNNPACK fusions of the compiled program are a convolution (their root)."""
        return sum(
            "ROOT" in b and " convolution(" in b.split("ROOT", 1)[1].split("\n", 1)[0]
            for b in ynn_fusion_bodies(compiled.as_text())
        )

    # by default YNNPACK runs the convolutions (forward, input and weight gradients)
    assert ynn_convolutions(default) >= 10, ynn_convolutions(default)
    assert ynn_convolutions(tuned) == 0
    (l0, g0), (l1, g1) = default(*args), tuned(*args)
    np.testing.assert_allclose(l0, l1, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
