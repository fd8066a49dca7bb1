"""Convolutional VAE: Conv 1→16 s2, 16→32 s2, 32→64, 3136 → μ, log σ² (128) and mirror.

Run:    python train.py --config configs/conv_vae.py --workdir runs/conv_vae
Expect: see the results table in README.md for the test metrics after this budget.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_vae")
    config.loss = "bce"
    config.num_epochs = 5
    return config
