"""Every model family in configs/ validates and overfits one small batch through the real step."""

import importlib

import jax
import numpy as np
import pytest
from conftest import ROOT

from jaxae import config as config_lib
from jaxae import data, models, objectives, optim, train

CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py") if not p.stem.startswith("_"))
FAMILIES = list(models.MODELS)  # the eleven families; test_models pins the exact list


@pytest.fixture(scope="module")
def feature_workdir(tmp_path_factory):
    """A one-step classifier: what configs/perceptual.py's feature_workdir must hold."""
    from jaxae import classifier

    workdir = tmp_path_factory.mktemp("features") / "cls"
    classifier.main(
        [f"--workdir={workdir}", "--config.dataset.name=synthetic", "--config.num_steps=1"]
    )
    return workdir


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_validates_and_documents_its_run(name, request):
    module = importlib.import_module(f"configs.{name}")
    config = module.get_config()
    if config.perceptual.feature_weight:  # its classifier is trained first, by one command
        command = f"python -m jaxae.classifier --workdir {config.perceptual.feature_workdir}"
        assert command in module.__doc__
        config.perceptual.feature_workdir = str(request.getfixturevalue("feature_workdir"))
    config_lib.validate(config)
    assert f"--config configs/{name}.py" in module.__doc__


# The configs that reproduce PyTorch or Keras code start from that framework's initialisation,
# and the configs built on them from theirs; the rest from Flax's.
INIT_SCHEMES = {
    "pytorch": {
        "vanilla",
        "deep_fc",
        "conv_simple",
        "conv_deep",
        "conv_vae",
        "contractive",
        "sparse_kl",
        "sparse_l1",
        "denoising_fc",
        "ssim",
        "ms_ssim",
        "perceptual",
        "vae_gan",
    },
    "keras": {"conv_keras", "denoising"},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_documents_its_init_scheme(name):
    module = importlib.import_module(f"configs.{name}")
    scheme = module.get_config().model.init_scheme
    expected = next((s for s, names in INIT_SCHEMES.items() if name in names), "flax")
    assert scheme == expected
    assert f"init_scheme='{scheme}'" in module.__doc__


def test_all_eleven_families_have_a_config():
    assert set(FAMILIES) <= set(CONFIGS)


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_family_overfits_one_batch(name):
    """Reconstruction MSE on 8 fixed images falls at least 10x through the real train step."""
    config = importlib.import_module(f"configs.{name}").get_config()
    config.grad_clip = 0.0
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    images = data.load_dataset("synthetic", max_train_examples=8, max_test_examples=8).train_images
    batch = jax.numpy.asarray(images)
    steps = 400
    tx, schedule = optim.make_optimizer(config, steps)
    state = train.init_state(model, tx, (28, 28, 1), seed=0)
    step = jax.jit(train.make_train_step(objectives.make_objective(config, model), tx, schedule))
    rng = jax.random.PRNGKey(0)
    mses = []
    for _ in range(steps):
        state, metrics = step(state, batch, rng)
        mses.append(metrics["mse"])
    mses = np.asarray(jax.device_get(mses))
    assert np.isfinite(mses).all()
    assert mses[-10:].mean() < mses[0] / 10, f"{name}: mse {mses[0]:.4f} -> {mses[-10:].mean():.4f}"
