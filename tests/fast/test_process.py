"""jaxae.fast.process and fast.resolve: the process settings come with the fast ops only; freed
memory reused without page faults (also when set after JAX started, as jaxae.train does),
unrolled threefry with the same bits on the JAX versions it is tested with, and the steps' CPU
compile options (XLA's convolutions, same values)."""

import platform
import subprocess
import sys
import textwrap

import jax
import pytest
from conftest import ynn_fusion_bodies
from fast_testing import train_mode_loss

from jaxae import fast
from jaxae.fast import process

# Runs a jitted function whose 64 MB intermediate is a fresh XLA temp buffer on every call,
# and prints the minor page faults of 5 calls (after 3 warm-up calls).
SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from jaxae.fast import process
    # as train.py, before JAX's backend starts, for a config whose last run measured a step
    # larger than a thread's heap
    memory = process.StepMemory.for_config(sys.argv[2], {"model": "big"})
    memory.write(100 << 20)
    process.before_jax(sys.argv[1], memory)
    import jax, jax.numpy as jnp
    if sys.argv[1] != "off":
        note = process.for_training(True)[0]
        assert note == "malloc reuses freed memory (the step's 100 MiB of temporaries)", note
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


def run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    return out.stdout


def page_faults(mode: str, directory) -> int:
    return int(run(SCRIPT, mode, str(directory)).split()[-1])


@pytest.mark.slow
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_reuse_freed_memory_stops_page_faults_of_xla_temp_buffers(tmp_path):
    default = page_faults("off", tmp_path)
    if default < 2_000:  # newer jaxlibs keep their temporaries: nothing for the setting to fix
        pytest.skip(f"this jaxlib faults {default} times in 5 calls without the setting")
    # 5 calls × 64 MB of fresh pages is ~80,000 faults; reused memory faults (almost) never.
    # A busy host's heap was seen to grow by one 64 MB buffer (16,384 faults) in every window;
    # a setting that did nothing would fault as often as the default.
    assert default > 20_000, default
    tuned = page_faults("auto", tmp_path)
    assert tuned < default / 4, (tuned, default)


# Random draws the way the models make them (fold_in, split, bernoulli, normal), printed
# bit-exactly, then whether the compiled program still has a while loop. Modes: "default" (no
# fast ops), "tuned", "scanned" (compiled as a scan epoch is: inside threefry_lowering(False)),
# "off again" (a run without the fast ops after a tuned one in this process).
RANDOM_SCRIPT = textwrap.dedent(
    """
    import sys
    from jaxae.fast import process
    mode = sys.argv[1]
    notes = process.for_training(mode != "default", scanned=mode == "scanned")
    if mode == "off again":
        assert process.for_training(False) == []
    assert ("threefry unrolled" in " ".join(notes)) == (mode != "default"), notes
    import jax, numpy as np

    def draws(key):
        key = jax.random.fold_in(key, 7)
        a, b = jax.random.split(key)
        keep = jax.random.bernoulli(a, 0.8, (64, 33))
        noise = jax.random.normal(b, (5, 7))
        return keep, noise

    def compiled(f):
        return jax.jit(f).lower(jax.random.PRNGKey(3)).compile()

    with process.threefry_lowering(False, fast=mode == "scanned"):
        f = compiled(draws)
    keep, noise = f(jax.random.PRNGKey(3))
    print(np.packbits(np.asarray(keep)).tobytes().hex(), np.asarray(noise).tobytes().hex())
    print("while" in f.as_text())
    print("while" in compiled(lambda key: draws(key)).as_text())  # after the context
    """
)


@pytest.mark.slow
def test_unrolled_threefry_draws_the_same_bits_without_a_loop():
    """for_training(True) unrolls it and for_training(False) leaves (or puts back) JAX's loop;
    inside threefry_lowering(False), as a scan epoch compiles, the loop is back until the end."""
    outputs = {mode: run(RANDOM_SCRIPT, mode).split() for mode in ("default", "tuned", "scanned")}
    outputs["off again"] = run(RANDOM_SCRIPT, "off again").split()
    bits = {tuple(out[:2]) for out in outputs.values()}
    assert len(bits) == 1  # the same masks and noise, bit for bit
    loops = {mode: out[2:] for mode, out in outputs.items()}
    assert loops == {
        "default": ["True", "True"],
        "tuned": ["False", "False"],
        "scanned": ["True", "False"],
        "off again": ["True", "True"],
    }


@pytest.mark.slow
def test_step_compiler_options_swap_in_xla_convolutions_with_the_same_values():
    """On CPU the steps compile convolutions with XLA's own kernels, not YNNPACK's; the
    gradients of conv_deep (convs, phase transposed convs, BatchNorm, max-pool) agree."""
    import numpy as np

    if jax.default_backend() != "cpu":
        pytest.skip("the options are for XLA:CPU")
    options = process.step_compiler_options(True)
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


def test_nothing_applies_without_fast_ops():
    assert process.for_training(False) == []
    assert process.step_compiler_options(False) == {}


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the options are for XLA:CPU")
def test_fast_compile_options_keep_convolutions_off_ynnpack_on_cpu():
    assert process.step_compiler_options(True) == {
        "xla_cpu_experimental_ynn_fusion_type": process.YNN_FUSION_TYPES
    }
    assert process.step_compiler_options() == process.step_compiler_options(True)


@pytest.mark.parametrize("version", ["0.9.2", "0.13.0", "1.0.0"])
def test_threefry_is_left_alone_outside_the_tested_jax_versions(monkeypatch, version):
    from jax._src.interpreters import mlir

    registered = []
    monkeypatch.setattr(mlir, "register_lowering", lambda *a, **k: registered.append(a))
    monkeypatch.setattr(jax, "__version__", version)
    reason = process.unroll_threefry()
    assert reason and version in reason and not registered


def test_threefry_is_left_alone_without_the_internal_rule(monkeypatch):
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as threefry

    registered = []
    monkeypatch.setattr(mlir, "register_lowering", lambda *a, **k: registered.append(a))
    monkeypatch.delattr(threefry, "_threefry2x32_lowering_rule")
    assert "lacks the internal threefry lowering rule" in process.unroll_threefry()
    assert not registered


def test_threefry_applies_on_this_jax(monkeypatch):
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as threefry

    registered = []
    monkeypatch.setattr(mlir, "register_lowering", lambda *a, **k: registered.append((a, k)))
    monkeypatch.setattr(process, "_threefry_unrolled", process._threefry_unrolled)
    assert process.unroll_threefry() is None
    assert process.unroll_threefry(False) is None
    (unrolled, on_cpu), (looped, _) = registered
    assert on_cpu == {"platform": "cpu"}
    assert unrolled[1] is threefry._threefry2x32_lowering_rule
    assert looped[1] is threefry._threefry2x32_cpu_lowering_rule  # JAX's own CPU rule again


def test_scan_epochs_compile_with_the_threefry_loop_and_say_so(monkeypatch):
    calls = []

    def record(unroll=True):
        calls.append(unroll)
        process._threefry_unrolled = unroll

    monkeypatch.setattr(process, "unroll_threefry", record)
    monkeypatch.setattr(process, "_threefry_unrolled", False)
    scanned = process.for_training(True, scanned=True)
    assert scanned[1] == (
        "threefry unrolled, in the scan epochs as JAX lowers it (faster to compile)"
    )
    assert process.for_training(True)[1] == "threefry unrolled"
    assert calls == [True, True]
    with process.threefry_lowering(False):
        assert calls[-1] is False
    assert calls[-1] is True  # the unrolled rule is back
    with process.threefry_lowering(False, fast=False), process.threefry_lowering(True):
        pass  # without the fast ops, and to the rule already registered: nothing to change
    assert calls == [True, True, False, True]


def test_scan_dispatch_compiles_inside_the_threefry_loop(monkeypatch):
    import collections
    import contextlib

    import jax.numpy as jnp

    from jaxae.runtime import parallel

    entered = []

    @contextlib.contextmanager
    def spy(unroll, fast=True):
        entered.append((unroll, fast))
        yield

    monkeypatch.setattr(process, "threefry_lowering", spy)
    mesh = parallel.make_mesh()

    state = collections.namedtuple("State", "step")(jnp.zeros((), jnp.int32))

    def step(state, batch, rng):
        return state._replace(step=state.step + 1), {"loss": jnp.mean(batch)}

    key, batch = jax.random.PRNGKey(0), 2 * mesh.size  # splits over any device count
    dispatch = parallel.make_scan_dispatch(step, mesh, key, batch, 3, fast=True)
    state, metrics = dispatch(state, jnp.ones((3 * batch, 1, 1, 1), jnp.uint8), key, 3)
    assert entered == [(False, True)] and metrics["loss"].shape == (3,)


def test_for_training_says_what_applies(monkeypatch):
    monkeypatch.setattr(process, "_malloc_note", "malloc unchanged (fast ops off)")
    monkeypatch.setattr(
        process, "unroll_threefry", lambda unroll=True: "JAX 0.13.0 is outside the tested"
    )
    notes = process.for_training(True, scanned=True)
    assert notes[:2] == [
        "malloc unchanged (fast ops off)",
        "threefry as JAX lowers it (JAX 0.13.0 is outside the tested)",
    ]
    monkeypatch.setattr(process, "_malloc_note", None)  # JAX started before before_jax ran
    assert process.for_training(True)[0] == (
        "malloc unchanged (process.before_jax was not called before JAX started)"
    )


@pytest.mark.parametrize(
    "mode, recorded, glibc, note",
    [
        ("off", 100 << 20, True, "malloc unchanged (fast ops off)"),
        (
            "auto",
            None,
            True,
            "malloc unchanged (this config's step memory is measured in this run)",
        ),
        (
            "on",
            17 << 20,
            True,
            "malloc unchanged (the step's 17 MiB of temporaries fit a thread heap)",
        ),
        (
            "on",
            64 << 20,
            True,
            "malloc unchanged (the step's 64 MiB of temporaries fit a thread heap)",
        ),
        ("auto", 82 << 20, True, "malloc reuses freed memory (the step's 82 MiB of temporaries)"),
        ("on", 82 << 20, False, "malloc unchanged (not glibc)"),
    ],
)
def test_before_jax_sets_malloc_only_for_a_step_larger_than_a_thread_heap(
    monkeypatch, tmp_path, mode, recorded, glibc, note
):
    """One arena slows every compilation, so it is set only where the config's last run
    measured temporaries that a thread's heap cannot hold."""
    calls = []
    monkeypatch.setattr(process, "reuse_freed_memory", lambda: calls.append(1) or glibc)
    memory = process.StepMemory.for_config(tmp_path, {"model": "conv_deep"})
    if recorded is not None:
        memory.write(recorded)
    process.before_jax(mode, memory)
    assert process._malloc_note == note
    assert len(calls) == (mode != "off" and recorded is not None and recorded > 64 << 20)


def test_before_jax_leaves_malloc_alone_for_steps_that_ran_in_scan_epochs(monkeypatch, tmp_path):
    """A scan epoch allocates its temporaries once a dispatch: one arena would only slow it."""
    monkeypatch.setattr(process, "reuse_freed_memory", lambda: pytest.fail("set malloc"))
    memory = process.StepMemory.for_config(tmp_path, {"model": "conv_deep"})
    memory.write(96 << 20, scanned=True)
    assert memory.read() == 96 << 20 and memory.scanned()
    process.before_jax("auto", memory)
    assert process._malloc_note == "malloc unchanged (the steps run in scan epochs)"
    memory.write(96 << 20)
    assert not memory.scanned()


def test_before_jax_without_a_kept_step_memory_leaves_malloc_alone(monkeypatch):
    monkeypatch.setattr(process, "reuse_freed_memory", lambda: pytest.fail("set malloc"))
    process.before_jax("on")
    assert process._malloc_note == (
        "malloc unchanged (step memory is kept only with the compilation cache)"
    )


def test_step_memory_is_kept_per_config_and_a_bad_file_reads_as_unmeasured(tmp_path):
    config = {"model": "conv_deep", "batch_size": 128, "progress": True, "profile_startup": False}
    memory = process.StepMemory.for_config(tmp_path / "step_memory", config)
    assert memory.read() is None
    memory.write(86_101_892)
    assert memory.read() == 86_101_892
    host_only = dict(config, progress=False, profile_startup=True, keep_checkpoints=9)
    assert process.StepMemory.for_config(tmp_path / "step_memory", host_only) == memory
    bigger = process.StepMemory.for_config(tmp_path / "step_memory", dict(config, batch_size=2048))
    assert bigger != memory and bigger.read() is None
    for text in ("{", '{"temp_bytes": "many"}', '{"temp_bytes": -1}', "[]"):
        memory.path.write_text(text)
        assert memory.read() is None, text


def test_record_step_memory_keeps_the_measurement_for_the_next_run(monkeypatch, tmp_path):
    memory = process.StepMemory.for_config(tmp_path, {"model": "vanilla"})
    monkeypatch.setattr(process, "_step_memory", memory)
    process.record_step_memory(None)  # nothing measured: nothing written
    assert memory.read() is None
    process.record_step_memory(3 << 20)
    assert memory.read() == 3 << 20
    monkeypatch.setattr(process, "_step_memory", None)
    process.record_step_memory(5 << 20)  # no store (compilation cache off)
    assert memory.read() == 3 << 20


def test_resolve(monkeypatch):
    assert fast.resolve("on") == (True, "fast ops on")
    assert fast.resolve("off") == (False, "fast ops off")
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert fast.resolve("auto") == (True, "fast ops on (auto: CPU backend)")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert fast.resolve("auto") == (False, "fast ops off (auto: gpu backend)")
    with pytest.raises(ValueError, match="fast_ops must be one of auto, on, off"):
        fast.resolve("yes")
