"""Codec test fixtures: an untrained codec Run (quick tests) and a tiny trained one."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from jaxae import config as config_lib
from jaxae import models
from jaxae.analysis.load import Run

FIELDS = {"features": 8, "latent_channels": 4, "image_shape": (28, 28, 1)}


@functools.cache
def initial_params():
    """(model, params) of the small Codec FIELDS at seed 0 (initialised once: its compile is
    the slow part of these tests)."""
    model = models.create_model("codec", **FIELDS)
    x = jnp.zeros((1, *FIELDS["image_shape"]), jnp.float32)
    return model, jax.jit(model.init)(jax.random.PRNGKey(0), x)["params"]


def untrained_run(workdir, scale=1.0):
    """A Run of the small Codec at its initial parameters (times `scale`: another model),
    with `workdir` for its tables."""
    model, params = initial_params()
    params = jax.tree.map(lambda p: p * scale, params)
    config = config_lib.default_config()
    config.model = config_lib.model_config("codec", **FIELDS)
    return Run(model=model, variables={"params": params}, config=config, step=0, workdir=workdir)


def images(n, shape=(28, 28, 1), seed=0):
    """Smooth random uint8 images [n, *shape] (blurred noise: some structure to code)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, shape[0] // 4, shape[1] // 4, shape[2]))
    x = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    return np.clip(x + rng.normal(0, 8, x.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def trained_codec(tmp_path_factory):
    """(workdir, dataset test images) of a codec trained 150 steps on synthetic images."""
    config = tiny_config("codec", num_steps=150, eval_every=150, batch_size=16)
    config.model = config_lib.model_config("codec", features=8, latent_channels=8)
    config.codec.lmbda = 0.05
    config.dataset.max_train_examples = 256
    config.dataset.max_test_examples = 32
    return train_tiny(tmp_path_factory, "codec", config)


def train_tiny(tmp_path_factory, name, config):
    """(workdir, dataset test images) after training `config` in a fresh workdir `name`, with
    the session's own dataset cache and no download."""
    from jaxae import data, train

    workdir = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAXAE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        env.setenv("JAXAE_NO_DOWNLOAD", "1")
        train.train_and_evaluate(config, workdir)
        test_images = data.load_for_config(config).test_images
    return workdir, test_images
