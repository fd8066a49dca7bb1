"""Fully connected Gaussian-encoder VAE with a Bernoulli decoder; reports the ELBO in nats.

Run:    python train.py --config configs/vae.py --workdir runs/vae
Expect: see the results table in README.md for the test metrics after this budget.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vae")
    config.loss = "bce"
    config.num_epochs = 5
    return config
