"""Adversarial training: each update moves its own parameters, the critic's state is part of
the checkpoint (exact resume, kill -9 included), 1 device ≡ 2 devices, one-line config errors."""

import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT, assert_trees_equal, tiny_config

import jaxae
from jaxae import adversarial, config, data, models, objectives, optim, steps, train
from jaxae.runtime import checkpoint
from jaxae.runtime.metrics import read

# small models and critics: the properties do not depend on size
SMALL = {
    "aae": {"model.hidden": (32, 16), "model.latent_dim": 4, "adversarial.hidden": (16,)},
    "vae_gan": {
        "model.features": (8, 16, 16),
        "model.latent_dim": 8,
        "adversarial.features": (8, 16),
    },
}


def small(name, **overrides):
    return tiny_config(name, **{**SMALL[name], **overrides})


def _parts(cfg):
    """(model, objective, adversary, state, schedule, tx) of `cfg` at initialisation."""
    fields = dict(cfg.model)
    model = models.create_model(fields.pop("name"), **fields)
    tx, schedule = optim.make_optimizer(cfg, 10)
    adversary = adversarial.build(cfg, model)
    state = steps.init_state(model, tx, (28, 28, 1), 0, adversary)
    return model, objectives.make_objective(cfg, model), adversary, state, schedule, tx


def _images(n=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)


def _nonzero(tree):
    return any(float(jnp.abs(leaf).max()) > 0 for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", ["aae", "vae_gan"])
def test_each_loss_reaches_its_own_parameters_only(name):
    _, objective, adversary, state, _, _ = _parts(small(name))
    x, rng = data.to_float(_images()), jax.random.PRNGKey(1)
    key = jax.random.PRNGKey(2)

    def part(which, params, critic_params):
        hook = adversary.hook(critic_params, key, None)
        loss, (terms, _, _) = objective(
            params, state.batch_stats, x, rng, train=True, step=state.step, adversary=hook
        )
        return loss if which == "autoencoder" else jnp.mean(terms["disc_loss"])

    grad = jax.jit(jax.grad(part, argnums=(1, 2)), static_argnums=0)
    to_ae, to_critic = grad("autoencoder", state.params, state.disc["params"])
    assert _nonzero(to_ae) and not _nonzero(to_critic)
    to_ae, to_critic = grad("critic", state.params, state.disc["params"])
    assert not _nonzero(to_ae) and _nonzero(to_critic)


@pytest.mark.parametrize("name", ["aae", "vae_gan"])
def test_one_step_updates_both_and_the_critic_leaves_the_autoencoder_alone(name):
    # with the adversarial weights 0 the autoencoder's update is the plain step's (to float
    # rounding: XLA may order the conv gradients' sums differently in the larger program),
    # while the critic still learns in the same step
    overrides = {"adversarial.weight": 0.0, "adversarial.feature_weight": 0.0}
    model, objective, adversary, state, schedule, tx = _parts(small(name, **overrides))
    batch, rng = _images(), jax.random.PRNGKey(3)
    step = jax.jit(steps.make_train_step(objective, tx, schedule, adversary=adversary))
    new, metrics = step(state, batch, rng)
    plain_state = steps.TrainState(
        step=state.step,
        params=state.params,
        batch_stats=state.batch_stats,
        opt_state=state.opt_state,
    )
    plain, _ = jax.jit(steps.make_train_step(objective, tx, schedule))(plain_state, batch, rng)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        (new.params, new.opt_state),
        (plain.params, plain.opt_state),
    )
    assert _nonzero(jax.tree.map(jnp.subtract, new.disc["params"], state.disc["params"]))
    assert not np.array_equal(new.disc["rng"], state.disc["rng"])
    for term in ("disc_loss", "adv_loss", "disc_real", "disc_fake", "disc_grad_norm"):
        assert np.isfinite(float(metrics[term])), term
    # and the adversarial term does move the autoencoder when weighted (Adam's first update is
    # about lr · sign(g), so compare its moments, which hold the gradient itself)
    _, objective, adversary, state, schedule, tx = _parts(small(name))
    weighted, _ = jax.jit(steps.make_train_step(objective, tx, schedule, adversary=adversary))(
        state, batch, rng
    )
    assert _nonzero(jax.tree.map(jnp.subtract, weighted.opt_state, plain.opt_state))


def _state(workdir, step=None):
    mngr = checkpoint.manager(workdir, read_only=True)
    state, _ = checkpoint.restore(mngr, mngr.latest_step() if step is None else step)
    return jax.tree.map(np.asarray, state)


@pytest.mark.parametrize("name", ["aae", pytest.param("vae_gan", marks=pytest.mark.slow)])
def test_resumed_run_equals_uninterrupted_one_critic_included(name, tmp_path):
    full = small(name, num_steps=6)
    train.train_and_evaluate(full, tmp_path / "full")
    train.train_and_evaluate(small(name, num_steps=3), tmp_path / "resumed")
    summary = train.train_and_evaluate(full, tmp_path / "resumed")
    assert summary["steps"] == 6
    reference, resumed = _state(tmp_path / "full"), _state(tmp_path / "resumed")
    assert set(reference["disc"]) == {"params", "opt_state", "rng"}
    assert_trees_equal(resumed, reference)
    logged = [r for r in read(tmp_path / "resumed" / "metrics.jsonl") if r["split"] == "train"]
    names = {"disc_loss", "adv_loss", "disc_real", "disc_fake", "disc_grad_norm"}
    names |= {"disc_feature_loss"} if name == "vae_gan" else set()
    assert logged[-1]["step"] == 6 and all(names <= set(r) for r in logged)
    # the critic in the state does not stop analysis from loading the run
    run = jaxae.load(tmp_path / "resumed")
    assert run.reconstruct(_images(2)).shape == (2, 28, 28, 1)


KILL_ARGS = [
    "--config.dataset.name=synthetic",
    "--config.dataset.max_train_examples=64",
    "--config.dataset.max_test_examples=32",
    "--config.batch_size=16",
    "--config.num_steps=30",
    "--config.eval_every=10",
    "--config.checkpoint_every=2",
    "--config.log_every=1",
    "--config.progress=False",
    "--config.model.hidden=(32,16)",
    "--config.model.latent_dim=4",
    "--config.adversarial.hidden=(16,)",
]


def _start(workdir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXAE_NO_DOWNLOAD": "1"}
    cmd = [sys.executable, "train.py", "--config", "configs/aae.py", "--workdir", str(workdir)]
    return subprocess.Popen(
        [*cmd, *KILL_ARGS], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.slow
def test_killed_adversarial_run_resumes_to_identical_state(tmp_path):
    workdir = tmp_path / "run"
    proc, deadline = _start(workdir), time.monotonic() + 300
    while not any(s >= 4 for s in _steps(workdir)):  # killed past a checkpoint, before the end
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed_at = max(_steps(workdir))
    assert 4 <= killed_at < 30
    _, err = _start(workdir).communicate(timeout=300)  # the same command finishes the run
    _, err_ref = _start(tmp_path / "reference").communicate(timeout=300)
    assert b"Traceback" not in err + err_ref, (err + err_ref).decode()[-2000:]
    assert_trees_equal(_state(workdir, 30), _state(tmp_path / "reference", 30))


def _steps(workdir):
    directory = workdir / "checkpoints"
    return (
        [int(p.name) for p in directory.iterdir() if p.name.isdigit()] if directory.exists() else []
    )


TWO_DEVICE_SCRIPT = """
    import sys
    import jax
    from test_adversarial import small
    from jaxae import train
    assert jax.device_count() == 2, jax.devices()
    root = sys.argv[1]
    train.train_and_evaluate(small("aae", optimizer="sgd"), f"{root}/aae_jit")
    train.train_and_evaluate(small("aae", optimizer="sgd", parallel="pmap"), f"{root}/aae_pmap")
    train.train_and_evaluate(small("vae_gan", optimizer="sgd"), f"{root}/vae_gan_jit")
"""


@pytest.mark.slow
def test_two_devices_equal_one_device(tmp_path):
    from runtime.test_parallel import assert_close, run_python, wait

    root = tmp_path / "two"
    proc = run_python(TWO_DEVICE_SCRIPT.replace("sys.argv[1]", repr(str(root))), devices=2)
    for name in ("aae", "vae_gan"):
        train.train_and_evaluate(small(name, optimizer="sgd"), tmp_path / name)
    wait(proc)
    for name, other in (("aae", "aae_jit"), ("aae", "aae_pmap"), ("vae_gan", "vae_gan_jit")):
        one, two = _state(tmp_path / name), _state(root / other)
        assert_close(two["disc"]["params"], one["disc"]["params"], rtol=1e-4, atol=1e-5)
        assert_close(two["params"], one["params"], rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(two["disc"]["rng"], one["disc"]["rng"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"adversarial.kind": "pixel"}, "'adversarial.kind' is 'pixel'; choose one of"),
        ({"adversarial.weight": 0.5}, "adversarial.weight acts only with a critic"),
        (
            {"adversarial.kind": "code", "model": config.model_config("conv_simple")},
            "needs an unbounded code: use model linear, vanilla",
        ),
        (
            {"adversarial.kind": "code", "model": config.model_config("vanilla")},
            "with code_activation='relu'",
        ),
        (
            {"adversarial.kind": "image", "model": config.model_config("vqvae")},
            "needs a continuous code",
        ),
        (
            {"adversarial.kind": "image", "adversarial.prior_samples": True},
            "prior_samples decodes N(0, I) codes, which needs a VAE, not 'vanilla'",
        ),
        (
            {
                "adversarial.kind": "code",
                "adversarial.feature_weight": 1.0,
                "model": config.model_config("vae"),
            },
            "act on an image critic",
        ),
        ({"adversarial.kind": "image", "adversarial.features": (8, 0)}, "sizes > 0"),
        ({"adversarial.kind": "image", "adversarial.learning_rate": 0.0}, "must be > 0"),
    ],
)
def test_bad_adversarial_config_is_one_clear_line(overrides, message):
    cfg = tiny_config("vanilla")
    for key, value in overrides.items():
        target, *parts = [cfg, *key.split(".")]
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value
    with pytest.raises(config.ConfigError, match=None) as info:
        config.validate(cfg)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["aae", "vae_gan"])
def test_shipped_configs_validate(name):
    config.validate(tiny_config(name))
