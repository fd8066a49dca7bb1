"""Analysis test fixtures: two tiny trained runs shared by the session, and small Limits."""

import pytest
from conftest import tiny_config

from jaxae.analysis.context import Limits

LIMITS = Limits(
    eval_examples=32,
    tsne_points=32,
    probe_train=64,
    probe_test=32,
    pca_train=64,
    nll_examples=8,
    nll_samples=4,
    batch_size=32,
)


def _train(tmp_path_factory, name: str, config):
    """Trains `config` (a few steps on synthetic data) into a fresh workdir: (workdir, summary)."""
    from jaxae import train  # the tests train; jaxae.analysis itself never imports training code

    workdir = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as env:  # the autouse env fixture is per test, not session
        env.setenv("JAXAE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        env.setenv("JAXAE_NO_DOWNLOAD", "1")
        summary = train.train_and_evaluate(config, workdir)
    return workdir, summary


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    """(workdir, summary): a 6-step conv_vae run with class 0 held out of training."""
    return _train(tmp_path_factory, "conv_vae_run", tiny_config("conv_vae", **_HELD_OUT))


@pytest.fixture(scope="session")
def linear_run(tmp_path_factory):
    """(config, workdir, summary): a 6-step linear run, k = 8, checkpoints and evals at 3 and 6."""
    config = tiny_config("linear", eval_every=3, **{"model.latent_dim": 8})
    return (config, *_train(tmp_path_factory, "linear_run", config))


_HELD_OUT = {"dataset.exclude_class": 0}
