"""Fully connected Gaussian-encoder VAE with a Bernoulli decoder; reports the ELBO in nats.

Init: Flax's defaults (init_scheme='flax'): no framework's code to reproduce.
Run:    python train.py --config configs/vae.py --workdir runs/vae
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0228, SSIM 0.533, ELBO -256.9 nats (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vae")
    config.loss = "bce"
    config.num_epochs = 5
    return config
