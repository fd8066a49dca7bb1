"""Denoising, sparse, β-VAE, NLL, linear AE ≡ PCA and layer-wise pretraining, by their math."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from conftest import tiny_config

from jaxae import config as config_lib
from jaxae import corruption, losses, models, objectives, optim, pretrain, train, vae
from jaxae.runtime.metrics import read


def _model(config):
    fields = dict(config.model)
    return models.create_model(fields.pop("name"), **fields)


def _train(config, images, steps, seed=0):
    """`steps` real train steps on one fixed uint8 batch; returns (model, state, last metrics)."""
    model = _model(config)
    tx, schedule = optim.make_optimizer(config, steps)
    state = train.init_state(model, tx, tuple(config.model.image_shape), seed=seed)
    step = jax.jit(train.make_train_step(objectives.make_objective(config, model), tx, schedule))
    metrics = None
    for _ in range(steps):
        state, metrics = step(state, images, jax.random.PRNGKey(seed))
    return model, state, jax.device_get(metrics)


def _images(n, shape=(8, 8, 1), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# Denoising


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_each_corruption_changes_the_expected_fraction_of_pixels(p):
    x = jnp.full((64, 28, 28, 1), 0.5)
    key = jax.random.PRNGKey(0)
    masked = corruption.corrupt(x, key, "masking", sigma=0.0, p=p)
    assert float(jnp.mean(masked == 0.0)) == pytest.approx(p, abs=0.01)
    assert float(jnp.mean(masked == 0.5)) == pytest.approx(1 - p, abs=0.01)
    salted = corruption.corrupt(x, key, "salt_pepper", sigma=0.0, p=p)
    assert float(jnp.mean(salted != 0.5)) == pytest.approx(p, abs=0.01)
    assert float(jnp.mean(salted == 1.0)) == pytest.approx(p / 2, abs=0.01)
    assert float(jnp.mean(salted == 0.0)) == pytest.approx(p / 2, abs=0.01)
    noisy = corruption.corrupt(x, key, "gaussian", sigma=p / 5, p=0.0)
    assert float(jnp.mean(noisy != 0.5)) > 0.999  # every pixel moves
    assert float(jnp.std(noisy - x)) == pytest.approx(p / 5, rel=0.02)
    assert float(jnp.min(noisy)) >= 0.0 and float(jnp.max(noisy)) <= 1.0
    assert corruption.corrupt(x, key, "none", sigma=1.0, p=1.0) is x


def test_denoising_objective_corrupts_the_input_in_training_and_scores_the_clean_image():
    config = tiny_config("denoising_fc")
    config.model.image_shape = (8, 8, 1)
    config.denoise.p = 1.0  # every pixel masked: the model sees zeros
    model = _model(config)
    x = jnp.asarray(_images(4)) / 255.0
    variables = model.init(jax.random.PRNGKey(0), x)
    objective = objectives.make_objective(config, model)
    rng = jax.random.PRNGKey(1)
    loss, (terms, _, logits) = objective(variables["params"], {}, x, rng, train=True)
    expected_logits, _ = model.apply(variables, jnp.zeros_like(x))
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-6)
    np.testing.assert_allclose(loss, jnp.mean(losses.mse(expected_logits, x)), rtol=1e-6)
    _, (_, _, clean_logits) = objective(variables["params"], {}, x, rng, train=False)
    np.testing.assert_allclose(clean_logits, model.apply(variables, x)[0], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Sparse


def test_sparse_kl_training_pulls_mean_activation_toward_rho():
    images = _images(32)
    runs = {}
    for beta in (0.0, 0.05):
        config = tiny_config("sparse_kl", **{"sparse.kl_beta": beta, "learning_rate": 3e-3})
        config.model.image_shape = (8, 8, 1)
        config.model.latent_dim = 24
        if beta == 0.0:  # still log the activation: a negligible weight
            config.sparse.kl_beta = 1e-9
        _, _, metrics = _train(config, images, steps=150)
        runs[beta] = metrics["mean_activation"]
    rho = 0.05
    assert abs(runs[0.05] - rho) < 0.5 * abs(runs[0.0] - rho), runs
    assert runs[0.05] < runs[0.0]


def test_sparse_terms_are_logged_and_l1_is_the_code_norm():
    z = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.0, 0.0]])
    np.testing.assert_allclose(losses.code_l1(z), [1.5, 2.0])
    np.testing.assert_allclose(losses.mean_activation(z), [-0.5 / 3, 2.0 / 3], rtol=1e-6)
    h = jnp.full((4, 3), 0.05)
    np.testing.assert_allclose(losses.sparsity_kl(h, 0.05), np.zeros(4), atol=1e-6)
    kl = float(losses.bernoulli_kl(0.05, jnp.asarray(0.2)))
    assert kl == pytest.approx(0.05 * np.log(0.05 / 0.2) + 0.95 * np.log(0.95 / 0.8), rel=1e-5)
    config = tiny_config("sparse_l1")
    config.model.image_shape = (8, 8, 1)
    _, _, metrics = _train(config, _images(16), steps=2)
    assert {"l1", "mean_activation", "mse", "loss"} <= set(metrics)


# ---------------------------------------------------------------------------------------------
# Variational


def _small_vae(beta=1.0, **overrides):
    config = tiny_config("beta_vae", **{"vae.beta": beta, "vae.kl_warmup_steps": 0, **overrides})
    config.model.image_shape = (8, 8, 1)
    config.model.hidden = (32,)
    config.model.latent_dim = 4
    return config


def test_beta_vae_with_larger_beta_has_lower_kl():
    images = _images(32, seed=1)
    kls = {}
    for beta in (1.0, 8.0):
        _, _, metrics = _train(_small_vae(beta, learning_rate=3e-3), images, steps=200)
        kls[beta] = metrics["kl"]
    assert kls[8.0] < 0.5 * kls[1.0], kls


def test_kl_warmup_is_linear_then_beta():
    for step, weight in ((0, 0.0), (50, 2.0), (100, 4.0), (300, 4.0)):
        assert float(vae.kl_weight(4.0, 100, jnp.asarray(step))) == pytest.approx(weight)
    assert float(vae.kl_weight(4.0, 100, None)) == 4.0  # evaluation: the full objective
    assert float(vae.kl_weight(4.0, 0, jnp.asarray(0))) == 4.0  # warm-up off


def test_kl_warmup_weights_the_kl_term_of_the_loss():
    config = _small_vae(2.0, **{"vae.kl_warmup_steps": 10})
    model = _model(config)
    x = jnp.asarray(_images(4)) / 255.0
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    objective = objectives.make_objective(config, model)
    for step, weight in ((0, 0.0), (5, 1.0), (20, 2.0)):
        loss, (terms, _, _) = objective(
            params, {}, x, jax.random.PRNGKey(1), train=True, step=jnp.asarray(step)
        )
        expected = jnp.mean(terms["recon"] + weight * terms["kl"])
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
        np.testing.assert_allclose(terms["kl_weight"], weight)


def test_static_and_dynamic_binarization():
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(2000, 4)), jnp.float32)
    static = vae.binarize(x, "static", jax.random.PRNGKey(0))
    np.testing.assert_array_equal(static, (x > 0.5).astype(jnp.float32))
    draws = jnp.stack([vae.binarize(x, "dynamic", jax.random.PRNGKey(k)) for k in range(2)])
    assert set(np.unique(draws).tolist()) == {0.0, 1.0}
    assert not np.array_equal(draws[0], draws[1])  # a fresh sample for every key
    assert float(jnp.mean(draws[0] - x)) == pytest.approx(0.0, abs=0.01)  # E[sample] = x
    assert vae.binarize(x, "none", jax.random.PRNGKey(0)) is x


def test_importance_sampled_nll_is_at_most_the_negative_elbo():
    config = _small_vae(1.0, learning_rate=3e-3, **{"vae.binarize": "static"})
    images = _images(16, seed=2)
    model, state, _ = _train(config, images, steps=60)
    x = vae.binarize(jnp.asarray(images) / 255.0, "static", jax.random.PRNGKey(0))
    variables = {"params": state.params}
    nll = vae.importance_sampled_nll(model, variables, x, jax.random.PRNGKey(3), num_samples=200)
    objective = objectives.make_objective(config, model)
    neg_elbo = jnp.mean(
        jnp.stack(
            [
                -objective(state.params, {}, x, jax.random.PRNGKey(k), train=False)[1][0]["elbo"]
                for k in range(20)
            ]
        ),
        axis=0,
    )
    assert nll.shape == (16,)
    assert float(jnp.mean(nll)) < float(jnp.mean(neg_elbo))
    assert np.all(np.asarray(nll) <= np.asarray(neg_elbo) + 0.5)  # per image, up to MC noise
    one = vae.importance_sampled_nll(model, variables, x, jax.random.PRNGKey(4), num_samples=1)
    assert float(jnp.mean(one)) >= float(jnp.mean(nll))  # K = 1 is the (sampled) ELBO


@pytest.mark.slow
def test_vae_run_reports_nll_in_summary(tmp_path):
    config = _small_vae(1.0, **{"vae.nll_examples": 10, "vae.nll_samples": 20})
    config.dataset.name = "synthetic"
    summary = train.train_and_evaluate(config, tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["nll"] == summary["nll"] and np.isfinite(summary["nll"])
    assert summary["nll"] <= -summary["elbo"] + 1.0
    assert any("kl" in r for r in read(tmp_path / "metrics.jsonl") if r["split"] == "train")


# ---------------------------------------------------------------------------------------------
# Linear AE ≡ PCA


def _pca_data(scale: float):
    """[512, 4, 4, 1] data around 0.5 with 3 strong directions (a clear spectral gap) and its
    top-3 principal directions [16, 3]."""
    rng = np.random.default_rng(0)
    d, k, n = 16, 3, 512
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = scale * np.array([3.0, 2.5, 2.0] + [0.1] * (d - k))
    data = (rng.normal(size=(n, d)) * scales) @ basis.T + 0.5
    top = np.linalg.svd(data - data.mean(0), full_matrices=False)[2][:k].T
    return jnp.asarray(data.reshape(n, 4, 4, 1), jnp.float32), top


def _fit(loss_fn, params, steps=1500, lr=1e-2):
    tx = optax.adam(lr)

    @jax.jit
    def step(params, opt_state):
        updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state)
        return optax.apply_updates(params, updates), opt_state

    opt_state = tx.init(params)
    for _ in range(steps):
        params, opt_state = step(params, opt_state)
    return params


def _decoder_basis(params, tied: bool) -> np.ndarray:
    return np.asarray(params["enc_kernel"] if tied else params["dec_kernel"].T)  # [D, k]


@pytest.mark.parametrize("tied", [False, True])
def test_linear_autoencoder_decoder_spans_the_top_k_pca_subspace(tied):
    """Squared error on the linear model's output: its decoder columns span the top-k PCs."""
    x, top = _pca_data(1.0)
    model = models.create_model("linear", latent_dim=3, tied=tied, image_shape=(4, 4, 1))
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    loss_fn = lambda p: jnp.mean((model.apply({"params": p}, x)[0] - x) ** 2)
    angles = scipy.linalg.subspace_angles(_decoder_basis(_fit(loss_fn, params), tied), top)
    assert np.max(angles) < 0.02, angles


@pytest.mark.slow
def test_linear_config_objective_learns_the_pca_subspace():
    """The `linear` config's own objective (MSE after the output sigmoid) on data near 0.5,
    where the sigmoid is nearly linear, finds the same subspace."""
    x, top = _pca_data(0.05)
    config = tiny_config("linear")
    config.model.latent_dim = 3
    config.model.image_shape = (4, 4, 1)
    model = _model(config)
    objective = objectives.make_objective(config, model)
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    loss_fn = lambda p: objective(p, {}, x, jax.random.PRNGKey(0), train=True)[0]
    angles = scipy.linalg.subspace_angles(_decoder_basis(_fit(loss_fn, params, 3000), False), top)
    assert np.max(angles) < 0.05, angles


# ---------------------------------------------------------------------------------------------
# Greedy layer-wise pretraining


def _small_hinton_config(**overrides):
    config = tiny_config("hinton_pretrain", **{"pretrain.steps_per_layer": 40, **overrides})
    config.model.hidden = (32, 16)
    config.model.latent_dim = 4
    return config


def test_pretraining_trains_one_pair_at_a_time_and_lowers_each_layer_loss():
    config = _small_hinton_config(**{"pretrain.learning_rate": 1e-2})
    model = _model(config)
    images = _images(64, shape=(28, 28, 1))
    params = train.init_state(model, optax.adam(1e-3), (28, 28, 1), seed=0).params
    assert pretrain.layer_pairs(model) == [
        ("enc_0", "dec_2"),
        ("enc_1", "dec_1"),
        ("enc_2", "dec_0"),
    ]
    x = jnp.asarray(images[:16]) / 255.0
    logged = []
    trained = pretrain.train_layer(
        model,
        1,
        params,
        images,
        steps=40,
        batch_size=16,
        learning_rate=1e-2,
        seed=0,
        log_every=40,
        log=logged.append,
    )
    for name in params:
        same = all(
            np.array_equal(a, b)
            for a, b in zip(
                jax.tree.leaves(params[name]), jax.tree.leaves(trained[name]), strict=True
            )
        )
        assert same == (name not in ("enc_1", "dec_1")), name
    before = pretrain.layer_loss(model, 1, {}, params, x)
    after = pretrain.layer_loss(model, 1, {}, trained, x)
    assert float(after) < float(before) and logged[-1]["layer"] == 1


@pytest.mark.slow
def test_pretrain_run_logs_each_layer_and_does_not_rerun_on_resume(tmp_path):
    config = _small_hinton_config()
    train.train_and_evaluate(config, tmp_path)
    records = read(tmp_path / "metrics.jsonl")
    pre = [r for r in records if r["split"] == "pretrain"]
    assert sorted({r["layer"] for r in pre}) == [0, 1, 2]
    assert all(r["step"] == 0 and np.isfinite(r["loss"]) for r in pre)
    config.num_steps = 8  # the same workdir continues fine-tuning, pretraining is not repeated
    summary = train.train_and_evaluate(config, tmp_path)
    assert summary["steps"] == 8
    again = [r for r in read(tmp_path / "metrics.jsonl") if r["split"] == "pretrain"]
    assert again == pre


# ---------------------------------------------------------------------------------------------
# Config errors


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("vanilla", {"sparse.kl_beta": 0.1}, "sparse.kl_beta needs a code in"),
        ("vae", {"sparse.l1": 0.1}, "sparse penalties act on a deterministic code"),
        (
            "vanilla",
            {"contractive.weight": 0.1, "contractive.method": "closed_form"},
            "one sigmoid",
        ),
        ("vanilla", {"pretrain.steps_per_layer": 5}, "needs the stacked 'hinton' model"),
        ("vanilla", {"denoise.kind": "jpeg"}, "denoise.kind"),
        ("vanilla", {"denoise.p": 1.5}, "'denoise.p' must be in"),
        ("sparse_kl", {"sparse.rho": 1.0}, "'sparse.rho' must be in"),
        ("vae", {"vae.binarize": "otsu"}, "vae.binarize"),
        ("contractive", {"contractive.num_probes": 0}, "'contractive.num_probes' must be > 0"),
    ],
)
def test_bad_regularizer_configs_are_one_line_errors(name, overrides, message):
    config = tiny_config(name, **overrides)
    with pytest.raises(config_lib.ConfigError, match=message) as e:
        config_lib.validate(config)
    assert "\n" not in str(e.value)
