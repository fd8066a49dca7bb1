"""The program store: compiled programs kept across processes under a key that needs no tracing,
identical results when loaded, one note and a compile when a stored file is bad, and steps whose
programs depend on the data's shapes only."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, tiny_config

from jaxae import train
from jaxae.runtime import job, programs


@pytest.fixture(autouse=True)
def _fresh_checks(monkeypatch):
    monkeypatch.setattr(programs, "_checked", {})  # each test checks its own directory


def _loads(fn):
    """(result of fn(), number of programs loaded from a store while it ran)."""
    events = []

    def listen(event, **_):
        if event == programs.LOADED:
            events.append(event)

    jax.monitoring.register_event_listener(listen)
    try:
        return fn(), len(events)
    finally:
        jax.monitoring.unregister_event_listener(listen)


def _step(x, scale):
    return jnp.sin(x) * scale + x.sum()


def _jitted():
    return jax.jit(_step, static_argnums=1)


def test_an_off_store_returns_the_jitted_function_itself():
    jitted = _jitted()
    assert programs.OFF.wrap("step", jitted) is jitted
    assert programs.store(config={}) is programs.OFF  # enable() was never called here


def test_a_second_store_loads_what_the_first_compiled_with_identical_results(tmp_path):
    x = jnp.linspace(0, 1, 12).reshape(3, 4)
    first = programs.ProgramStore(tmp_path, "run-a").wrap("step", _jitted(), static_argnums=(1,))
    expected, loaded = _loads(lambda: first(x, 2.0))
    assert loaded == 0 and len(list(tmp_path.glob("step-*.bin"))) == 1
    programs._checked.clear()  # as in a new process (which then checks the check program)
    second = programs.ProgramStore(tmp_path, "run-a").wrap("step", _jitted(), static_argnums=(1,))
    result, loaded = _loads(lambda: second(x, 2.0))
    assert loaded == 1
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(result, _step(x, 2.0))


def test_the_store_reports_the_train_steps_temporaries_compiled_or_loaded(tmp_path):
    """What train.py keeps for the next run's malloc choice (fast.process.record_step_memory):
    XLA's own count, the same from a stored program as from a compiled one."""

    def step(x):  # a product read by two more ops: a temporary buffer on every XLA:CPU
        y = jnp.sin(x @ x.T)
        return jnp.sum(y @ y, axis=0) + jnp.sum(jnp.cos(y), axis=1)

    x = jnp.ones((256, 64))
    expected = jax.jit(step).lower(x).compile().memory_analysis().temp_size_in_bytes
    assert expected > 0
    for _ in range(2):  # compiled, then loaded
        store = programs.ProgramStore(tmp_path, "run")
        assert store.step_temp_bytes() is None  # before the step has run
        store.wrap("eval_step", jax.jit(step))(x)
        assert store.step_temp_bytes() is None  # not the train step
        store.wrap("train_step", jax.jit(step))(x)
        assert store.step_temp_bytes() == expected
        programs._checked.clear()


def test_the_key_covers_the_run_the_shapes_and_the_static_arguments(tmp_path):
    x = jnp.ones((3, 4))
    store = programs.ProgramStore(tmp_path, "run-a")
    store.wrap("step", _jitted(), static_argnums=(1,))(x, 2.0)
    store.wrap("step", _jitted(), static_argnums=(1,))(x, 3.0)  # another static value
    store.wrap("step", _jitted(), static_argnums=(1,))(jnp.ones((4, 4)), 2.0)  # another shape
    store.wrap("step", _jitted(), static_argnums=(1,))(x.astype(jnp.bfloat16), 2.0)
    programs.ProgramStore(tmp_path, "run-b").wrap("step", _jitted(), static_argnums=(1,))(x, 2.0)
    assert len(list(tmp_path.glob("step-*.bin"))) == 5


def test_a_truncated_program_is_one_note_then_compiled_and_replaced(tmp_path, capsys):
    x = jnp.ones((3, 4))
    programs.ProgramStore(tmp_path, "run").wrap("step", _jitted(), static_argnums=(1,))(x, 2.0)
    (path,) = tmp_path.glob("step-*.bin")
    path.write_bytes(path.read_bytes()[:100])
    programs._checked.clear()
    result, loaded = _loads(
        lambda: programs.ProgramStore(tmp_path, "run").wrap("step", _jitted(), (1,))(x, 2.0)
    )
    assert loaded == 0
    np.testing.assert_array_equal(result, _step(x, 2.0))
    err = capsys.readouterr().err
    assert err.count("note:") == 1 and f"stored program {path} did not load" in err
    assert path.stat().st_size > 100  # replaced by the program just compiled


def test_programs_that_do_not_run_here_are_compiled_instead(tmp_path, capsys):
    x = jnp.ones((3, 4))
    programs.ProgramStore(tmp_path, "run").wrap("step", _jitted(), static_argnums=(1,))(x, 2.0)
    (check,) = tmp_path.glob("check-*.bin")  # the first store also kept the check program
    check.write_bytes(b"not a program")  # as a JAX whose stored executables fail would
    programs._checked.clear()
    result, loaded = _loads(
        lambda: programs.ProgramStore(tmp_path, "run").wrap("step", _jitted(), (1,))(x, 2.0)
    )
    assert loaded == 0
    np.testing.assert_array_equal(result, _step(x, 2.0))
    assert "stored programs do not run with this JAX" in capsys.readouterr().err


_PROCESS = """
import sys, jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from jaxae.runtime import parallel, programs, startup
startup.enable_compilation_cache()
loaded = []
jax.monitoring.register_event_listener(lambda e, **_: e == programs.LOADED and loaded.append(e))
store = programs.ProgramStore(startup.cache_root() / "programs", "run")
f = store.wrap("f", jax.jit(lambda x: jnp.tanh(x @ x.T).sum(0) + jnp.sin(x[::-1]).mean()))
x = jnp.linspace(-1, 1, 64).reshape(8, 8)
mesh = parallel.make_mesh()  # two CPU devices: the batch split over them
g = store.wrap("g", jax.jit(lambda x: jnp.cos(x) * 2, out_shardings=NamedSharding(mesh, P())))
y = np.concatenate([f(x), g(jax.device_put(x, NamedSharding(mesh, P("data")))).ravel()])
print(len(loaded), repr(y.tobytes().hex()))
"""


def _run(cache):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXAE_CACHE_DIR": str(cache)}
    env["JAX_NUM_CPU_DEVICES"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", _PROCESS], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    loaded, values = out.stdout.split()
    return int(loaded), values


def test_programs_stored_by_one_process_run_in_the_next_on_their_devices(tmp_path):
    # XLA:CPU serializes an executable loaded from JAX's own cache without its kernels; the
    # store compiles such a program afresh, so each of these processes gets the same result
    stored = _run(tmp_path)  # compiles (into JAX's cache too) and stores
    assert stored[0] == 0
    for path in (tmp_path / "programs").glob("[fg]-*.bin"):
        path.unlink()  # JAX's cache still has the programs: the next store is of cache hits
    again = _run(tmp_path)
    loaded = _run(tmp_path)
    assert again == stored and loaded == (2, stored[1])


class _Lowered:
    """A lowered program whose compile() is served by JAX's cache (a hit is counted), and
    whose compile with options succeeds when `fresh` (else raises, as an XLA without the
    option does)."""

    def __init__(self, fresh: bool):
        self.fresh = fresh

    def compile(self, compiler_options=None):
        if compiler_options is None:
            programs._count_cache_hits("/jax/compilation_cache/cache_hits")
            return "loaded from JAX's cache"
        if not self.fresh:
            raise RuntimeError("No such compile option: xla_embed_ir_in_executable")
        assert jax.config.jax_persistent_cache_min_compile_time_secs == float("inf")
        return "compiled afresh, not written to JAX's cache"


def test_a_program_jaxs_cache_served_is_compiled_afresh_to_be_stored():
    before = jax.config.jax_persistent_cache_min_compile_time_secs
    compiled, storable = programs.fresh_compile(_Lowered(fresh=True))
    assert (compiled, storable) == ("compiled afresh, not written to JAX's cache", True)
    compiled, storable = programs.fresh_compile(_Lowered(fresh=False))
    assert (compiled, storable) == ("loaded from JAX's cache", False)  # runs, is not stored
    assert jax.config.jax_persistent_cache_min_compile_time_secs == before


_FRESH_COMPILE, _LOAD_DATA = programs.fresh_compile, job._load_data


def _lowered_programs(monkeypatch, tmp_path, config, invert):
    """The StableHLO of every program the store compiles in one run of `config`, in order,
    on its dataset (`invert`: with every pixel value v replaced by 255 - v)."""
    texts = []

    def recording(lowered):
        texts.append(lowered.as_text())
        return _FRESH_COMPILE(lowered)

    def load_data(config):
        ds = _LOAD_DATA(config)
        if not invert:
            return ds
        flip = {k: 255 - getattr(ds, k) for k in ("train_images", "test_images")}
        return dataclasses.replace(ds, **flip)

    monkeypatch.setattr(programs, "fresh_compile", recording)
    monkeypatch.setattr(job, "_load_data", load_data)
    monkeypatch.setattr(programs, "_directory", tmp_path / ("inverted" if invert else "plain"))
    train.train_and_evaluate(config, tmp_path / ("b" if invert else "a"))
    return texts


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, overrides",
    [("vanilla", {"scan_epoch": "on"}), ("conv_simple", {}), ("vae", {"num_steps": 2})],
)
def test_steps_lower_the_same_programs_for_other_data_of_the_same_shapes(
    monkeypatch, tmp_path, name, overrides
):
    config = tiny_config(name, **overrides)
    plain = _lowered_programs(monkeypatch, tmp_path, config, invert=False)
    inverted = _lowered_programs(monkeypatch, tmp_path, config, invert=True)
    assert len(plain) >= 3  # initialisation, the step or its scan, evaluation
    assert plain == inverted  # so a key of the config and the shapes finds the right program


def test_the_store_stays_under_its_size_by_removing_the_least_recently_used(tmp_path, monkeypatch):
    x = jnp.ones((3, 4))
    store = programs.ProgramStore(tmp_path, "run")
    for scale, age in ((1.0, 300), (2.0, 200), (3.0, 100)):  # stored 300, 200, 100 s ago
        store.wrap("step", _jitted(), static_argnums=(1,))(x, scale)
        newest = max(tmp_path.glob("step-*.bin"), key=lambda p: p.stat().st_mtime_ns)
        os.utime(newest, (newest.stat().st_atime - age, newest.stat().st_mtime - age))
    oldest, middle, recent = sorted(tmp_path.glob("step-*.bin"), key=lambda p: p.stat().st_mtime)
    programs._checked.clear()
    programs.ProgramStore(tmp_path, "run").wrap("step", _jitted(), (1,))(x, 1.0)  # loads oldest
    # room for what is stored now and about one program more (their sizes differ by bytes)
    size = sum(path.stat().st_size for path in tmp_path.glob("*.bin"))
    monkeypatch.setenv("JAXAE_PROGRAMS_MAX_BYTES", str(size + 1000))
    store.wrap("step", _jitted(), static_argnums=(1,))(x, 4.0)
    left = set(tmp_path.glob("step-*.bin"))
    assert middle not in left and {oldest, recent} <= left and len(left) == 3
    assert list(tmp_path.glob("check-*.bin"))  # never removed


def test_a_fact_is_worked_out_once_per_run_and_read_by_the_next(tmp_path):
    calls = []

    def work_out(value):
        return lambda: calls.append(value) or value

    assert programs.ProgramStore(tmp_path, "run").fact("canonical", work_out(True)) is True
    assert programs.ProgramStore(tmp_path, "run").fact("canonical", work_out(False)) is True
    assert programs.ProgramStore(tmp_path, "other").fact("canonical", work_out(False)) is False
    assert calls == [True, False]  # the second store of "run" read the first one's answer
    for path in tmp_path.glob("canonical-*.json"):
        path.write_text("{trunc")  # a partial file is worked out again
    assert programs.ProgramStore(tmp_path, "run").fact("canonical", work_out(True)) is True
    assert programs.OFF.fact("canonical", work_out(False)) is False  # no store: every time
    assert calls == [True, False, True, False]


def test_a_store_size_that_is_not_a_number_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXAE_PROGRAMS_MAX_BYTES", "2G")
    with pytest.raises(programs.StoreSizeError, match=r"JAXAE_PROGRAMS_MAX_BYTES='2G' is not"):
        programs.enable(tmp_path)
    assert programs._directory is None
