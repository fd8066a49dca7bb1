"""hostmem.reuse_freed_memory: XLA:CPU's large per-execution buffers stop page-faulting."""

import platform
import subprocess
import sys
import textwrap

import pytest

# Runs a jitted function whose 64 MB intermediate is a fresh XLA temp buffer on every call,
# and prints the minor page faults of 5 calls after 3 warm-up calls.
SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from jaxae import hostmem
    if sys.argv[1] == "tuned":
        assert hostmem.reuse_freed_memory()
    import jax, jax.numpy as jnp
    a, b = jnp.ones((2048, 64)), jnp.ones((64, 8192))
    f = jax.jit(lambda a, b: jnp.sum(jnp.sin(a @ b), axis=0))
    for _ in range(3):
        f(a, b).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        f(a, b).block_until_ready()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def page_faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_reuse_freed_memory_stops_page_faults_of_xla_temp_buffers():
    default, tuned = page_faults("default"), page_faults("tuned")
    # 5 calls × 64 MB of fresh pages is ~80,000 faults; reused memory faults (almost) never
    assert default > 20_000, default
    assert tuned < default / 20, (tuned, default)
