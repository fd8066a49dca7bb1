"""Cold start: the persistent compilation cache, torch-free imports, the scan choice and the
start-up profile."""

import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from conftest import ROOT

from jaxae.runtime import parallel, periodic, startup


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *env.pop("path", [])])}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**full_env, **env},
        timeout=300,
    )


@pytest.mark.slow
def test_a_second_process_loads_every_compilation_from_the_cache(tmp_path):
    code = (
        "import jax, jax.numpy as jnp\n"
        "from jaxae.runtime import startup\n"
        "startup.begin(True)\n"
        "startup.enable_compilation_cache()\n"
        "jax.block_until_ready(jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((8, 8))))\n"
        "startup.mark('done')\n"
        "print(startup.report())\n"
    )
    first = _python(code, JAXAE_CACHE_DIR=str(tmp_path))
    second = _python(code, JAXAE_CACHE_DIR=str(tmp_path))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert list((tmp_path / "xla").iterdir())  # written under $JAXAE_CACHE_DIR/xla
    compiled = re.search(r"done \[(\d+) compiled, 0 from cache\]", first.stdout)
    assert compiled and int(compiled[1]) > 0, first.stdout
    assert f"done [0 compiled, {compiled[1]} from cache in " in second.stdout, second.stdout


@pytest.mark.slow
def test_importing_the_training_code_never_imports_torch(tmp_path):
    """tensorboardX imports torch and boto3 when installed: stand-ins that fail loudly."""
    for name in ("torch", "boto3"):
        fake = tmp_path / name
        fake.mkdir()
        (fake / "__init__.py").write_text(f"raise SystemExit('{name} was imported')\n")
    code = (
        "import sys, jaxae.train, jaxae.analysis.load\n"
        "heavy = ('torch', 'boto3', 'matplotlib', 'sklearn', 'dm_pix')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
        "from jaxae.runtime.metrics import EventsWriter, MetricWriter\n"
        "print('ok')\n"
    )
    result = _python(code, path=[str(tmp_path)])
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr
    # and torch still imports afterwards for code that wants it
    after = _python("import jaxae.runtime.metrics\nimport torch\n", path=[str(tmp_path)])
    assert "torch was imported" in after.stderr


def test_the_profile_records_marks_once_and_is_off_by_default():
    startup.begin(False)
    startup.mark("anything")
    assert startup.report() is None
    startup.begin(True)
    x = jax.jit(lambda a: a + 1)(jnp.zeros(3))
    startup.mark("step", wait=x)
    startup.mark("step")  # a second time: ignored (marks inside the loop count once)
    text = startup.report()
    startup.begin(False)
    labels = [line.split("]")[0] for line in text.splitlines()[1:]]
    assert len(labels) == 2 and "python and imports" in labels[0] and "step" in labels[1]


def test_a_dispatch_the_profile_waited_on_is_left_out_of_the_rate():
    """The profile blocks on the first dispatch before the log's timer starts: timing it would
    divide its images by the seconds of a copy (a one-dispatch scan epoch printed 34M img/s)."""

    class Writer:
        def write(self, step, split, values):
            self.values = values

    startup.begin(True)
    x = jax.jit(lambda a: a + 1)(jnp.zeros(3))
    waited, again = startup.mark("first", wait=x), startup.mark("first", wait=x)
    startup.begin(False)
    assert waited and not again and not startup.mark("off", wait=x)
    writer = Writer()
    log = periodic.TrainLog(writer, log_every=2, total_steps=3, batch_size=8)
    log.push(1, 2, {"loss": jnp.ones(2)}, timed=False)
    log.flush()
    assert log.images_per_second is None and "images_per_second" not in writer.values
    log.push(3, 3, {"loss": jnp.ones(())})
    log.flush()
    assert log.train_images == 8 and writer.values["images_per_second"] > 0


def test_scan_epoch_auto_is_chosen_per_backend_and_says_why(monkeypatch):
    dense = {"kernel": jnp.zeros((4, 4))}
    conv = {"kernel": jnp.zeros((3, 3, 1, 4))}
    assert parallel.scan_epoch_choice("auto", conv, 1000) == (
        False,
        "auto: convolutions outside XLA:CPU's canonical form run slower in a scan",
    )
    assert parallel.scan_epoch_choice("auto", conv, 1000, lambda: False)[0] is False
    assert parallel.scan_epoch_choice("auto", conv, 1000, lambda: True) == (
        True,
        "auto: every convolution in XLA:CPU's canonical form runs faster in a scan",
    )
    assert parallel.scan_epoch_choice("auto", dense, 1000)[0]
    assert parallel.scan_epoch_choice("off", dense, 1000) == (False, "scan_epoch=off")
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    on, why = parallel.scan_epoch_choice("auto", conv, 1000)
    assert on and why == "auto: gpu backend, one dispatch per epoch (unmeasured)"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, flags, says",
    [
        ("conv_simple", [], "lax.scan epochs (auto: every convolution in XLA:CPU's canonical"),
        ("conv_simple", ["--config.fast_ops=off"], "from the host with prefetch (auto: conv"),
        ("codec", [], "from the host with prefetch (auto: convolutions outside"),
    ],
)
def test_conv_models_scan_on_cpu_where_their_convs_are_canonical(tmp_path, name, flags, says):
    """The fast ops write every convolution and its gradients in XLA:CPU's canonical form,
    which runs fast inside a scan; the codec's plain Flax convs do not, and stay per step."""
    flags += ["--config.dataset.name=synthetic", "--config.dataset.max_train_examples=64"]
    flags += ["--config.dataset.max_test_examples=32", "--config.batch_size=16"]
    flags += ["--config.num_steps=2", "--config.progress=False", "--config.compilation_cache=False"]
    run = subprocess.run(
        [sys.executable, "train.py", "--config", f"configs/{name}.py", "--workdir", str(tmp_path)]
        + flags,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert says in run.stdout


@pytest.mark.slow
def test_profile_startup_prints_the_breakdown_from_the_cli(tmp_path):
    flags = ["--config.dataset.name=synthetic", "--config.dataset.max_train_examples=64"]
    flags += ["--config.dataset.max_test_examples=32", "--config.batch_size=16"]
    flags += ["--config.num_steps=2", "--config.progress=False", "--config.profile_startup=True"]
    command = [sys.executable, "train.py", "--config", "configs/linear.py"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXAE_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        subprocess.run(
            [*command, "--workdir", str(tmp_path / name), *flags],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        for name in ("first", "second")
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "start-up profile" in run.stdout and "first step compiled and run" in run.stdout
    second = next(line for line in runs[1].stdout.splitlines() if "first step" in line)
    assert "[0 compiled," in second  # the second run of a config compiles nothing
    # ... and loads its steps from the program store, untraced, with the first run's results
    stored = {path.name.split("-")[0] for path in (tmp_path / "cache" / "programs").iterdir()}
    assert {"init", "scan_epoch", "eval", "check"} <= stored  # linear: fully connected, scanned
    state = next(line for line in runs[1].stdout.splitlines() if "state initialised" in line)
    assert "[0 compiled, 1 from cache" in state
    first, again = (
        json.loads((tmp_path / n / "summary.json").read_text()) for n in ("first", "second")
    )
    assert {k: first[k] for k in ("loss", "mse", "ssim")} == {
        k: again[k] for k in ("loss", "mse", "ssim")
    }


def test_exit_now_runs_the_exit_handlers_then_ends_unless_a_thread_still_runs(monkeypatch):
    import atexit
    import threading

    calls = []
    monkeypatch.setattr(atexit, "_run_exitfuncs", lambda: calls.append("atexit"))
    monkeypatch.setattr(os, "_exit", lambda code: calls.append(("exit", code)))
    main = threading.current_thread()
    monkeypatch.setattr(threading, "enumerate", lambda: [main])
    monkeypatch.setattr(sys, "gettrace", lambda: None)  # as in a plain run, under coverage too
    monkeypatch.setattr(sys, "getprofile", lambda: None)
    startup.exit_now()
    assert calls == ["atexit", ("exit", 0)]
    calls.clear()
    release = threading.Event()
    worker = threading.Thread(target=release.wait)  # e.g. a checkpoint still being written
    worker.start()
    monkeypatch.setattr(threading, "enumerate", lambda: [main, worker])
    try:
        startup.exit_now()
    finally:
        release.set()
        worker.join()
    assert calls == []  # Python's own exit waits for it
    monkeypatch.setattr(threading, "enumerate", lambda: [main])
    monkeypatch.setattr(sys, "getprofile", lambda: object())  # python -m cProfile train.py
    startup.exit_now()
    assert calls == []  # the profiler writes its file after train.py returns
