"""Reliability: kill it, corrupt it, feed it garbage; it loses nothing, says why."""

import contextlib
import errno
import importlib.util
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, assert_trees_equal, tiny_config

from jaxae import objectives, train
from jaxae.runtime import checkpoint, guard
from jaxae.runtime.metrics import read

from .test_tensorboard import tensorboard_scalars


def _state(workdir, step=None):
    """The whole train state (params, BatchNorm statistics, optimizer) of a checkpoint, as numpy."""
    mngr = checkpoint.manager(workdir, read_only=True)
    state, _ = checkpoint.restore(mngr, mngr.latest_step() if step is None else step)
    return jax.tree.map(np.asarray, state)


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    directory = pathlib.Path(directory)
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


# ------------------------------------------------------------------ kill -9, SIGTERM, resume

KILL_ARGS = [
    "--config.dataset.name=synthetic",
    "--config.dataset.max_train_examples=64",
    "--config.dataset.max_test_examples=256",
    "--config.batch_size=16",
    "--config.eval_batch_size=8",  # many eval batches: evaluation lasts long enough to be hit
    "--config.num_steps=20",
    "--config.eval_every=5",
    "--config.checkpoint_every=2",
    "--config.log_every=1",
    "--config.progress=False",
    "--config.model.hidden=(64,32)",  # deep_fc's blocks (BatchNorm, Dropout), smaller
    "--config.model.latent_dim=8",
]


def _start(workdir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXAE_NO_DOWNLOAD": "1"}
    cmd = [sys.executable, "train.py", "--config", "configs/deep_fc.py", "--workdir", str(workdir)]
    return subprocess.Popen(
        [*cmd, *KILL_ARGS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _records(workdir):
    path = workdir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    out = []
    for line in lines:
        with contextlib.suppress(json.JSONDecodeError):  # a line being written
            out.append(json.loads(line))
    return out


def _in_loop(workdir, since):
    """The run started at `since` has restored its checkpoint and entered the loop."""
    config = workdir / "config.json"  # rewritten by every run just before its loop
    return config.exists() and config.stat().st_mtime >= since


def _kill_at(workdir, moment, sig=signal.SIGKILL):
    """Starts the run, sends `sig` as soon as `moment(resumed_step)` holds; returns stderr."""
    start = checkpoint.manager(workdir, read_only=True).latest_step() or 0
    since = time.time() - 0.01
    proc = _start(workdir)
    deadline = time.monotonic() + 300
    while not (_in_loop(workdir, since) and moment(start)):
        assert proc.poll() is None, f"the run ended before the moment: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the moment to interrupt never came"
        time.sleep(0.001)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == (-sig if sig == signal.SIGKILL else 128 + sig), stderr
    return stderr


@pytest.mark.slow
def test_killed_and_terminated_runs_resume_to_identical_parameters(tmp_path):
    workdir = tmp_path / "run"

    def train_steps_after(start, n):
        steps = [r["step"] for r in _records(workdir) if r["split"] == "train"]
        return max(steps, default=0) >= start + n

    def during_eval(start):  # the train line of an eval step is written just before evaluating
        r = _records(workdir)
        return r and r[-1]["split"] == "train" and r[-1]["step"] % 5 == 0 and r[-1]["step"] > start

    def during_checkpoint_write(start):  # Orbax writes step N into N.orbax-checkpoint-tmp-*
        names = [p.name.split(".")[0] for p in (workdir / "checkpoints").glob("*tmp*")]
        return any(n.isdigit() and int(n) > start for n in names)

    _kill_at(workdir, lambda start: train_steps_after(start, 2))
    _kill_at(workdir, during_eval)
    _kill_at(workdir, during_checkpoint_write)
    stderr = _kill_at(workdir, lambda start: train_steps_after(start, 2), signal.SIGTERM)
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM after step ") and "to resume run python" in last
    stopped_at = int(last.split("after step ")[1].split(";")[0])
    assert checkpoint.manager(workdir, read_only=True).latest_step() == stopped_at < 20

    proc = _start(workdir)  # the same command once more runs to the end
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr

    reference = tmp_path / "reference"  # the same command, never interrupted
    _, stderr = _start(reference).communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    assert_trees_equal(_state(reference, 20), _state(workdir, 20))
    steps = [r["step"] for r in read(workdir / "metrics.jsonl") if r["split"] == "train"]
    assert steps == list(range(1, 21))  # the log continues where each run stopped, no repeats
    # and TensorBoard shows what it shows of an uninterrupted run (the speed aside)
    assert tensorboard_scalars(workdir) == tensorboard_scalars(reference)


# ------------------------------------------------------------------ damaged checkpoints


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """A 4-step conv_simple run that keeps checkpoints 2, 3 and 4: the damage tests' original."""
    workdir = tmp_path_factory.mktemp("four_steps")
    config = tiny_config("conv_simple", num_steps=4, checkpoint_every=1)
    train.train_and_evaluate(config, workdir)
    assert checkpoint.manager(workdir, read_only=True).all_steps() == [2, 3, 4]
    return config, workdir


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _largest(step_dir):
    return max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


DAMAGE = {
    "truncated array data": lambda d: _truncate(_largest(d / "state")),
    "emptied metadata": lambda d: (d / "meta" / "metadata").write_bytes(b""),
    "half-written (files missing)": lambda d: [
        p.unlink() for p in d.rglob("*") if p.is_file() and p.name.startswith("_")
    ],
    "emptied directory": lambda d: [shutil.rmtree(p) for p in d.iterdir() if p.is_dir()],
}


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(
    four_steps, tmp_path, damage, capfd
):
    config, original = four_steps
    workdir = tmp_path / "run"
    shutil.copytree(original, workdir)
    DAMAGE[damage](workdir / "checkpoints" / "4")
    damaged = _files(workdir / "checkpoints" / "4")
    good = {s: _files(workdir / "checkpoints" / str(s)) for s in (2, 3)}

    summary = train.train_and_evaluate(config, workdir)

    out, err = capfd.readouterr()
    assert "warning: checkpoint step 4 is damaged" in err and "from step 3" in out
    assert summary["steps"] == 4
    assert_trees_equal(_state(original, 4), _state(workdir, 4))  # step 4 redone, identically
    assert _files(workdir / "damaged_checkpoints" / "4") == damaged  # kept aside, not deleted
    for step in (2, 3):  # the good ones are untouched
        assert _files(workdir / "checkpoints" / str(step)) == good[step]


@pytest.mark.slow
def test_changed_array_without_manifest_is_caught_by_the_state_checksum(four_steps, tmp_path):
    config, original = four_steps
    workdir = tmp_path / "run"
    shutil.copytree(original, workdir)
    step4 = workdir / "checkpoints" / "4"
    (step4 / checkpoint.MANIFEST).unlink()  # as if killed between the commit and the seal
    mngr = checkpoint.manager(workdir)
    state, meta = checkpoint.restore(mngr, 4)
    state["params"] = jax.tree.map(lambda a: np.asarray(a) + 1.0, state["params"])
    mngr.delete(4)
    mngr.save(  # a well-formed step 4 whose arrays are not those its metadata describes
        4,
        args=checkpoint.ocp.args.Composite(
            state=checkpoint.ocp.args.StandardSave(state), meta=checkpoint.ocp.args.JsonSave(meta)
        ),
        force=True,
    )
    mngr.wait_until_finished()
    mngr.close()
    found = checkpoint.restore_latest_good(
        checkpoint.manager(workdir), jax.eval_shape(lambda: jax.tree.map(jnp.asarray, state))
    )
    assert found is not None and found[0] == 3
    assert (workdir / "damaged_checkpoints" / "4").is_dir()


@pytest.mark.slow
def test_checkpoint_of_another_version_or_optimizer_is_refused_untouched(four_steps, tmp_path):
    config, original = four_steps
    workdir = tmp_path / "run"
    shutil.copytree(original, workdir)
    before = _files(workdir)
    other = tiny_config("conv_simple", num_steps=4, checkpoint_every=1, optimizer="sgd")
    with pytest.raises(checkpoint.CheckpointMismatchError, match="differs at .*new --workdir"):
        train.train_and_evaluate(other, workdir)
    meta_file = workdir / "checkpoints" / "4" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    for step in (2, 3, 4):  # as written by a jaxae with another checkpoint format
        path = workdir / "checkpoints" / str(step) / "meta" / "metadata"
        path.write_text(json.dumps({**meta, "jaxae_format": checkpoint.FORMAT_VERSION + 1}))
        (workdir / "checkpoints" / str(step) / checkpoint.MANIFEST).unlink()
    before = _files(workdir)
    with pytest.raises(checkpoint.CheckpointMismatchError, match="format .*new --workdir"):
        train.train_and_evaluate(config, workdir)
    assert _files(workdir) == before  # nothing overwritten, nothing moved


def _full_disk_metadata(monkeypatch):
    """The JSON metadata of steps >= 3 fails with ENOSPC, as a full disk makes it."""
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler

    real = handler.JsonCheckpointHandler._save_fn

    async def full_after_step_2(self, x, directory):
        if x.get("step", 0) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
        return await real(self, x, directory)

    monkeypatch.setattr(handler.JsonCheckpointHandler, "_save_fn", full_after_step_2)


def _full_disk_arrays(monkeypatch):
    """TensorStore's own report of a full disk while it writes step 3's arrays, in Orbax's
    background thread: it surfaces only when step 4 waits for that write."""
    from orbax.checkpoint._src.serialization import serialization

    real = serialization.async_serialize_from_host

    async def full_at_step_3(rslices, spec, **kwargs):
        if "/3.orbax-checkpoint-tmp" in str(spec):
            raise ValueError(
                f'RESOURCE_EXHAUSTED: Error writing "params.x/0" in OCDBT database at {spec}: '
                f"Failed to write 9 bytes to file 9: No space left on device [os_error_code='28']"
            )
        return await real(rslices, spec, **kwargs)

    monkeypatch.setattr(serialization, "async_serialize_from_host", full_at_step_3)


@pytest.mark.slow
@pytest.mark.parametrize("inject", [_full_disk_metadata, _full_disk_arrays])
def test_full_disk_during_a_checkpoint_write_is_one_line_and_keeps_earlier_ones(
    inject, tmp_path, monkeypatch, capsys, caplog
):
    inject(monkeypatch)
    workdir = tmp_path / "run"
    tiny = ["--config.dataset.name=synthetic", "--config.dataset.max_train_examples=64"]
    tiny += ["--config.dataset.max_test_examples=32", "--config.batch_size=16"]
    tiny += ["--config.num_steps=4", "--config.checkpoint_every=1", "--config.progress=False"]
    tiny += ["--config.scan_epoch=off"]
    argv = ["--config", str(ROOT / "configs/conv_simple.py"), "--workdir", str(workdir), *tiny]
    with pytest.raises(SystemExit) as info:
        _cli().main(argv)
    assert info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("error: no space left on the device") and str(workdir) in err[0]
    assert " free there); checkpoints up to step 2 are intact;" in err[0]
    assert "rerun the same command" in err[0]
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in logged if "space" in m or "Finalize" in m or "Commit" in m], logged
    mngr = checkpoint.manager(workdir, read_only=True)
    assert mngr.all_steps() == [1, 2] and checkpoint.verify_files(mngr, 2)
    assert not list((workdir / "checkpoints").glob("*tmp*"))  # the partial step is gone
    monkeypatch.undo()  # space again: the same command resumes and ends as if never stopped
    _cli().main(argv)
    _cli().main([*argv[:3], str(tmp_path / "reference"), *tiny])
    assert_trees_equal(_state(tmp_path / "reference", 4), _state(workdir, 4))


def test_full_disk_while_writing_metrics_is_one_line(tmp_path, monkeypatch, capsys):
    from jaxae.runtime import metrics

    real = metrics.MetricWriter.write

    def full_at_step_3(self, step, split, values):
        if step >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return real(self, step, split, values)

    monkeypatch.setattr(metrics.MetricWriter, "write", full_at_step_3)
    workdir = tmp_path / "run"
    tiny = ["--config.dataset.name=synthetic", "--config.num_steps=4", "--config.log_every=1"]
    tiny += ["--config.dataset.max_train_examples=64", "--config.dataset.max_test_examples=32"]
    tiny += ["--config.progress=False", "--config.checkpoint_every=1", "--config.batch_size=16"]
    argv = ["--config", str(ROOT / "configs/conv_simple.py"), "--workdir", str(workdir), *tiny]
    with pytest.raises(SystemExit) as info:
        _cli().main(argv)
    assert info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: no space left on the device"), err
    assert f"--workdir {workdir} (" in err[0] and " free there)" in err[0]


# ------------------------------------------------------------------ two processes, one workdir


@pytest.mark.slow
def test_second_process_on_a_workdir_is_refused_and_a_killed_holder_does_not_block(tmp_path):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from jaxae.runtime import guard\n"
            "with guard.workdir_lock(sys.argv[1]):\n"
            "    print('locked', flush=True); time.sleep(600)",
            str(workdir),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(guard.WorkdirLockedError, match=f"process {holder.pid} on host"):
        train.train_and_evaluate(tiny_config("conv_simple"), workdir)
    assert os.listdir(workdir) == [guard.LOCK_NAME]  # nothing else written
    holder.kill()
    holder.wait()
    # the dead holder's lock file is no obstacle, and the lock excludes a second holder
    with guard.workdir_lock(workdir):
        second = guard.workdir_lock(workdir)
        with pytest.raises(guard.WorkdirLockedError):
            second.__enter__()
    assert os.listdir(workdir) == []  # the lock file goes with the lock


def test_sigint_is_a_stop_request_and_a_second_one_interrupts():
    # Python's own SIGINT handler, whatever an earlier test in this worker left installed
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with guard.stop_on_signals() as stop:
            assert not stop.requested
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.requested and stop.name == "SIGINT"
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)


# ------------------------------------------------------------------ NaN and inf


@pytest.mark.slow
def test_diverging_learning_rate_stops_naming_step_and_term_and_keeps_last_good(tmp_path):
    # SGD whose learning rate ramps up to 1e10 over the run: the model blows up around step 20
    # (from Flax's init; PyTorch's smaller one lets every ReLU die first, which stays finite)
    config = tiny_config(
        "vanilla",
        optimizer="sgd",
        learning_rate=1e10,
        warmup_steps=40,
        num_steps=40,
        **{"model.init_scheme": "flax"},
    )
    config.checkpoint_every = 2
    with pytest.raises(train.TrainingDivergedError) as info:
        train.train_and_evaluate(config, tmp_path)
    message = str(info.value)
    assert "\n" not in message and " became nan at step " in message
    term = message.split(" became ")[0]
    assert term.removeprefix("eval ") in {"loss", "mse", "psnr", "ssim", "grad_norm", "update_norm"}
    kept = int(message.split("last good checkpoint: step ")[1].split(" ")[0])
    assert kept < int(message.split("at step ")[1].split(";")[0])
    assert checkpoint.manager(tmp_path, read_only=True).latest_step() == kept
    state = _state(tmp_path, kept)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state))


def _poisoned_objective(real):
    """make_objective whose training loss is NaN on ~30% of steps (chosen by the step's key)."""

    def make(config, model):
        objective = real(config, model)

        def poisoned(params, batch_stats, x, rng, *, train, **kwargs):
            loss, aux = objective(params, batch_stats, x, rng, train=train, **kwargs)
            if train:
                bad = jax.random.uniform(jax.random.fold_in(rng, 7)) < 0.3
                loss = loss * jnp.where(bad, jnp.nan, 1.0)  # NaN gradients too
            return loss, aux

        return poisoned

    return make


def _poisoned_steps(seed, num_steps):
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), 1)  # the loop's train key
    draws = [
        jax.random.uniform(jax.random.fold_in(jax.random.fold_in(rng, s), 7))
        for s in range(num_steps)
    ]
    return [s + 1 for s, u in enumerate(draws) if u < 0.3]


@pytest.mark.slow
def test_nonfinite_updates_stop_training_or_are_skipped_and_counted(tmp_path, monkeypatch):
    monkeypatch.setattr(
        objectives, "make_objective", _poisoned_objective(objectives.make_objective)
    )
    bad_steps = _poisoned_steps(seed=0, num_steps=12)
    assert bad_steps and bad_steps[0] > 1

    small = {"model.hidden": (64, 32), "model.latent_dim": 8}
    config = tiny_config("deep_fc", num_steps=12, checkpoint_every=1, log_every=1, **small)
    with pytest.raises(
        train.TrainingDivergedError, match=f"loss became nan at step {bad_steps[0]};"
    ):
        train.train_and_evaluate(config, tmp_path / "stop")
    assert checkpoint.manager(tmp_path / "stop", read_only=True).latest_step() == bad_steps[0] - 1

    config.skip_nonfinite = 3
    config.checkpoint_every = 0  # at evaluations only: this half is about the updates
    summary = train.train_and_evaluate(config, tmp_path / "skip")
    assert summary["steps"] == 12 and np.isfinite(summary["loss"])
    records = [r for r in read(tmp_path / "skip" / "metrics.jsonl") if r["split"] == "train"]
    assert records[-1]["skipped_updates"] == len(bad_steps)
    logged = {r["step"] for r in records if "loss" in r}
    assert logged == set(range(1, 13)) - set(bad_steps)  # skipped steps log only the count
    state = _state(tmp_path / "skip")
    assert int(state["opt_state"]["total_notfinite"]) == len(bad_steps)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state["params"]))


# ------------------------------------------------------------------ bad input: one line, exit 2


def _cli():
    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_idx(path, array):
    codes = {np.dtype("uint8"): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


@pytest.fixture
def cifar_shaped_mnist(tmp_path, monkeypatch):
    """'mnist' IDX files whose images are 32×32×3, the shape of CIFAR-10."""
    directory = tmp_path / "idx"
    directory.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("t10k", 10)):
        _write_idx(
            directory / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 32, 32, 3), np.uint8)
        )
        _write_idx(directory / f"{split}-labels-idx1-ubyte", rng.integers(0, 9, (n,), np.uint8))
    monkeypatch.setenv("JAXAE_DATA_DIR", str(directory))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no-tfds"))
    monkeypatch.setenv("JAXAE_DEBIAN_DATA_ROOT", str(tmp_path / "no-debian"))
    return directory


BAD_INPUTS = {
    "negative model size": (["--config.model.latent_dim=-3"], "model.latent_dim"),
    "zero model size": (["--config.model.hidden=(256,0,64)"], "model.hidden"),
    "negative dataset size": (["--config.dataset.max_train_examples=-5"], "max_train_examples"),
    "mistyped field": (["--config.learning_rte=0.1"], "learning_rate"),
    "wrong type": (["--config.num_steps=1.5"], "num_steps"),
    "infinite learning rate": (["--config.learning_rate=1e999"], "learning_rate"),
    "negative seed": (["--config.seed=-1"], "seed"),
    "class out of range": (["--config.dataset.exclude_class=12"], "exclude_class"),
    "28x28 model on 32x32x3 data": (["--config.dataset.name=mnist"], "32×32×3"),
    "broken dataset file": (["--config.dataset.name=mnist", "BREAK"], "unreadable"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_line_and_writes_nothing(case, tmp_path, cifar_shaped_mnist, capsys):
    overrides, needle = BAD_INPUTS[case]
    if "BREAK" in overrides:
        overrides = [o for o in overrides if o != "BREAK"]
        _truncate(cifar_shaped_mnist / "train-images-idx3-ubyte")
    workdir = tmp_path / "run"
    tiny = ["--config.dataset.name=synthetic", "--config.num_steps=2", "--config.progress=False"]
    argv = ["--config", str(ROOT / "configs/vanilla.py"), "--workdir", str(workdir), *tiny]
    with pytest.raises(SystemExit) as info:
        _cli().main([*argv, *overrides])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and needle in err[-1], err
    assert not workdir.exists()


def test_workdir_that_is_a_file_or_under_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("precious")
    for workdir, needle in ((blocker, "is a file"), (blocker / "run", "cannot create")):
        argv = ["--config", str(ROOT / "configs/conv_simple.py"), "--workdir", str(workdir)]
        with pytest.raises(SystemExit) as info:
            _cli().main([*argv, "--config.dataset.name=synthetic"])
        assert info.value.code == 2
        assert needle in capsys.readouterr().err.strip().splitlines()[-1]
    assert blocker.read_text() == "precious"


def test_unwritable_lock_file_is_one_line_and_leaves_no_workdir(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(guard.os, "open", full_disk)
    with pytest.raises(guard.WorkdirError) as info, guard.workdir_lock(tmp_path / "run"):
        pass
    monkeypatch.undo()
    assert "cannot write the lock file" in str(info.value) and "No space left" in str(info.value)
    assert not (tmp_path / "run").exists()
