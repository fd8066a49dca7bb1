"""The training loop: determinism, checkpoints, exact resume and every file of the workdir."""

import json

import jax
import numpy as np
import pytest
from conftest import assert_trees_equal, tiny_config

from jaxae import train
from jaxae.runtime import checkpoint
from jaxae.runtime.metrics import read


def _params(workdir):
    """The parameters of the latest checkpoint in `workdir`, as numpy."""
    mngr = checkpoint.manager(workdir, read_only=True)
    state, _ = checkpoint.restore(mngr, mngr.latest_step())
    return jax.tree.map(np.asarray, state["params"])


@pytest.fixture(scope="module")
def deep_fc_run(tmp_path_factory):
    """One 6-step deep_fc run (BatchNorm + Dropout + clipping): the reference for several tests."""
    workdir = tmp_path_factory.mktemp("deep_fc_full")
    config = tiny_config("deep_fc", checkpoint_every=3)
    summary = train.train_and_evaluate(config, workdir)
    return config, workdir, summary


@pytest.mark.slow
def test_workdir_holds_every_file_of_the_contract(deep_fc_run):
    _, workdir, summary = deep_fc_run
    assert (workdir / "config.json").exists()
    assert list(workdir.glob("events.out.tfevents.*"))
    assert (workdir / "checkpoints").is_dir()
    records = read(workdir / "metrics.jsonl")
    splits = {r["split"] for r in records}
    assert splits == {"train", "eval"}
    train_record = next(r for r in records if r["split"] == "train")
    for key in ("step", "loss", "mse", "grad_norm", "update_norm", "learning_rate"):
        assert key in train_record
    on_disk = json.loads((workdir / "summary.json").read_text())
    assert on_disk == summary
    for key in ("loss", "mse", "psnr", "ssim", "params", "steps", "images_per_second"):
        assert key in summary
    assert summary["params"] == 1_144_880 and summary["steps"] == 6
    assert 0 < summary["mse"] < 0.5 and -1 <= summary["ssim"] <= 1


@pytest.mark.slow
def test_same_seed_gives_identical_parameters(deep_fc_run, tmp_path):
    config, workdir, _ = deep_fc_run
    train.train_and_evaluate(config, tmp_path)
    assert_trees_equal(_params(workdir), _params(tmp_path))


@pytest.mark.slow
def test_different_seed_gives_different_parameters(deep_fc_run, tmp_path):
    config, workdir, _ = deep_fc_run
    config = tiny_config("deep_fc", checkpoint_every=3, seed=1)
    train.train_and_evaluate(config, tmp_path)
    a, b = jax.tree.leaves(_params(workdir)), jax.tree.leaves(_params(tmp_path))
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.slow
def test_stopped_and_resumed_run_equals_uninterrupted_run(deep_fc_run, tmp_path):
    config, workdir, _ = deep_fc_run
    first_half = tiny_config("deep_fc", checkpoint_every=3, num_steps=3)
    train.train_and_evaluate(first_half, tmp_path)
    assert checkpoint.manager(tmp_path, read_only=True).latest_step() == 3
    summary = train.train_and_evaluate(config, tmp_path)  # same command as the full run
    assert summary["steps"] == 6
    assert_trees_equal(_params(workdir), _params(tmp_path))
    steps = [r["step"] for r in read(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    assert steps == sorted(set(steps))  # the resumed log continues, never repeats a step


def test_save_restore_roundtrip_is_identical(tmp_path):
    import optax

    from jaxae import models

    model = models.create_model("conv_deep")
    tx = optax.adam(1e-3)
    state = train.init_state(model, tx, (28, 28, 1), seed=3)
    mngr = checkpoint.manager(tmp_path)
    checkpoint.save(mngr, 7, state, {"note": "x"}, eval_loss=0.5)
    mngr.wait_until_finished()
    restored, meta = checkpoint.restore(mngr, 7, jax.eval_shape(lambda: state))
    assert_trees_equal(jax.tree.map(np.asarray, state), jax.tree.map(np.asarray, restored))
    assert meta["note"] == "x" and meta["step"] == 7
    assert mngr.best_step() == 7


@pytest.mark.slow
def test_rerun_of_a_finished_run_trains_nothing_more(deep_fc_run):
    config, workdir, summary = deep_fc_run
    again = train.train_and_evaluate(config, workdir)
    assert again["steps"] == 6
    assert again["mse"] == pytest.approx(summary["mse"], rel=1e-6)


@pytest.mark.slow
def test_checkpoint_from_another_model_is_refused(deep_fc_run):
    _, workdir, _ = deep_fc_run
    before = (workdir / "config.json").read_text()
    with pytest.raises(checkpoint.CheckpointMismatchError, match="use a new --workdir"):
        train.train_and_evaluate(tiny_config("vanilla"), workdir)
    assert (workdir / "config.json").read_text() == before  # nothing overwritten


def test_nan_stops_training_naming_step_and_term(tmp_path):
    config = tiny_config("vanilla", learning_rate=1e12, optimizer="sgd", num_steps=30)
    with pytest.raises(train.TrainingDivergedError, match=r"at step \d+"):
        train.train_and_evaluate(config, tmp_path)


def test_a_run_of_one_scan_dispatch_still_reports_its_speed(tmp_path):
    # 4 steps = one epoch = one lax.scan dispatch: its execution time is the training time
    config = tiny_config("vanilla", scan_epoch="on", num_steps=4)
    summary = train.train_and_evaluate(config, tmp_path)
    assert summary["images_per_second"] > 0


def _assert_close(a, b, rel=1e-3):
    """Same trees; each leaf within `rel` of its largest value plus 1e-5: f32 rounding through
    BatchNorm steps grows to ~1e-4 of a leaf's scale (and fills the conv biases before
    BatchNorm, whose true gradient is 0, with ~1e-4 noise); a wrong form differs by far more."""
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert np.max(np.abs(x - y)) <= rel * np.max(np.abs(y)) + 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", ["conv_deep", "vanilla"])
def test_fast_ops_on_and_off_train_alike_and_share_checkpoints(name, tmp_path):
    # SGD, not Adam: Adam turns rounding noise in ~0 gradients into full-size steps
    overrides = {"optimizer": "sgd", "learning_rate": 0.05, "checkpoint_every": 3}
    on = train.train_and_evaluate(tiny_config(name, fast_ops="on", **overrides), tmp_path / "on")
    off = train.train_and_evaluate(tiny_config(name, fast_ops="off", **overrides), tmp_path / "off")
    assert abs(on["loss"] - off["loss"]) < 1e-4 * abs(off["loss"])
    _assert_close(_params(tmp_path / "on"), _params(tmp_path / "off"))
    # a checkpoint written with the fast forms resumes with the plain ones
    half = tiny_config(name, fast_ops="on", **{**overrides, "num_steps": 3})
    train.train_and_evaluate(half, tmp_path / "switch")
    train.train_and_evaluate(tiny_config(name, fast_ops="off", **overrides), tmp_path / "switch")
    _assert_close(_params(tmp_path / "switch"), _params(tmp_path / "off"))


# ------------------------------------------------------------------ validation split, selection


def test_validation_split_is_reproducible_disjoint_and_complete():
    from jaxae.runtime import validation

    train_idx, val_idx = validation.split_indices(1000, 0.1, seed=3)
    again = validation.split_indices(1000, 0.1, seed=3)
    np.testing.assert_array_equal(train_idx, again[0])
    np.testing.assert_array_equal(val_idx, again[1])
    assert len(val_idx) == 100 and not set(train_idx) & set(val_idx)
    assert sorted([*train_idx, *val_idx]) == list(range(1000))
    other = validation.split_indices(1000, 0.1, seed=4)[1]
    assert not np.array_equal(val_idx, other)  # the seed chooses the examples
    with pytest.raises(validation.ValidationSplitError, match="holds out none"):
        validation.split_indices(5, 0.05, seed=0)


def test_held_out_images_are_not_trained_on():
    from jaxae import data
    from jaxae.runtime import validation

    n = 50
    images = np.arange(n * 4, dtype=np.uint8).reshape(n, 2, 2, 1)  # every image unique
    labels = np.arange(n, dtype=np.int32)
    ds = data.Dataset("toy", images, labels, images[:3], labels[:3], n, "test")
    rest, held = validation.hold_out(ds, 0.2, seed=0)
    assert len(held) == 10 and len(rest.train_images) == 40
    assert len(rest.train_labels) == 40 and rest.test_images is ds.test_images
    trained = {x.tobytes() for x in rest.train_images}
    assert not any(x.tobytes() in trained for x in held)
    assert {x.tobytes() for x in images} == trained | {x.tobytes() for x in held}
    assert validation.hold_out(ds, 0.0, seed=0) == (ds, None)


def test_early_stopping_needs_a_validation_split():
    from jaxae import config as config_lib

    with pytest.raises(config_lib.ConfigError, match="validation_fraction"):
        config_lib.validate(tiny_config("vanilla", **{"early_stopping.patience": 2}))
    with pytest.raises(config_lib.ConfigError, match=r"\[0, 1\)"):
        config_lib.validate(tiny_config("vanilla", **{"dataset.validation_fraction": 1.0}))


def _scripted_evaluation(monkeypatch, validation_losses):
    """Job.evaluate with chosen validation losses by step and test loss 1/step: test keeps
    improving, so a selection by test would always pick the latest step."""
    from jaxae.runtime import job

    real = job.Job.evaluate
    calls = []

    def evaluate(self, state, split="test", step=None, good=0):
        result = real(self, state, split, step, good)
        at = int(state.step)
        calls.append((split, at))
        result["loss"] = validation_losses[at] if split == "validation" else 1.0 / at
        return result

    monkeypatch.setattr(job.Job, "evaluate", evaluate)
    return calls


@pytest.mark.slow
def test_best_checkpoint_follows_validation_not_test(tmp_path, monkeypatch):
    calls = _scripted_evaluation(monkeypatch, {1: 0.5, 2: 0.1, 3: 0.3, 4: 0.4, 5: 0.2, 6: 0.6})
    config = tiny_config(
        "vanilla", eval_every=1, keep_checkpoints=1, **{"dataset.validation_fraction": 0.25}
    )
    summary = train.train_and_evaluate(config, tmp_path)
    assert summary["examples"] == {"train": 48, "validation": 16, "test": 32}
    assert summary["best_step"] == 2 and summary["best_validation_loss"] == 0.1
    assert summary["test_best"]["loss"] == 1 / 2  # the restored step-2 state was scored
    assert summary["test_latest"]["loss"] == summary["loss"] == 1 / 6
    assert summary["early_stopped_at"] is None and summary["steps"] == 6
    assert [c for c in calls if c[0] == "test"] == [("test", 6), ("test", 2)]  # at the end only
    mngr = checkpoint.manager(tmp_path, read_only=True)
    assert mngr.all_steps() == [2, 6] and mngr.best_step() == 2  # kept though keep=1
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_without_validation_no_checkpoint_is_chosen_by_test(tmp_path, monkeypatch):
    _scripted_evaluation(monkeypatch, {})
    config = tiny_config("vanilla", eval_every=1, keep_checkpoints=1)
    summary = train.train_and_evaluate(config, tmp_path)
    assert "test_best" not in summary and summary["loss"] == 1 / 6
    assert checkpoint.manager(tmp_path, read_only=True).all_steps() == [6]


@pytest.mark.slow
def test_early_stopping_stops_and_resumes_its_count(tmp_path, monkeypatch):
    losses = {1: 0.5, 2: 0.1, 3: 0.3, 4: 0.4, 5: 0.05, 6: 0.01}  # step 5 would improve again
    _scripted_evaluation(monkeypatch, losses)
    settings = {"dataset.validation_fraction": 0.25, "early_stopping.patience": 2}
    config = tiny_config("vanilla", eval_every=1, **settings)
    summary = train.train_and_evaluate(config, tmp_path / "full")
    assert summary["steps"] == 4 and summary["early_stopped_at"] == 4
    assert summary["best_step"] == 2 and summary["test_best"]["loss"] == 1 / 2
    assert checkpoint.manager(tmp_path / "full", read_only=True).latest_step() == 4
    assert train.train_and_evaluate(config, tmp_path / "full")["steps"] == 4  # stays stopped
    # stopped after step 3 (one evaluation without progress), resumed: stops at 4 all the same
    train.train_and_evaluate(
        tiny_config("vanilla", eval_every=1, num_steps=3, **settings), tmp_path / "resumed"
    )
    resumed = train.train_and_evaluate(config, tmp_path / "resumed")
    assert resumed["steps"] == 4 and resumed["early_stopped_at"] == 4
    assert_trees_equal(_params(tmp_path / "full"), _params(tmp_path / "resumed"))


def test_a_streamed_source_stays_streamed_when_split():
    from jaxae import data
    from jaxae.data import stream
    from jaxae.runtime import validation

    base = np.arange(40 * 4, dtype=np.float32).reshape(40, 1, 1, 4) / 160
    labels = np.zeros(40, np.int32)
    ds = data.Dataset("t", stream.Rows(base, np.arange(40)), labels, base[:5], labels[:5], 1, "x")
    rest, held = validation.hold_out(ds, 0.25, seed=0)
    assert stream.is_streamed(rest.train_images) and stream.is_streamed(held)
    train_idx, val_idx = validation.split_indices(40, 0.25, seed=0)
    np.testing.assert_array_equal(rest.train_images[np.arange(30)], base[train_idx])
    np.testing.assert_array_equal(held[np.arange(10)], base[val_idx])
