"""Semantic hashing (Salakhutdinov & Hinton): vanilla's network with a 32-unit sigmoid code that
Gaussian noise (std 4) on its pre-activation pushes to 0/1; the analysis hashes the code.

Init: Flax's defaults (init_scheme='flax'): no framework's code to reproduce.
Run:    python train.py --config configs/hashing.py --workdir runs/hashing
        python -m jaxae.analyze --workdir runs/hashing --only hashing
Straight-through rounding instead: --config.model.binary_code=straight_through
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config(
        "vanilla", latent_dim=32, code_activation="sigmoid", binary_code="noise", code_noise=4.0
    )
    config.loss = "bce"
    config.num_epochs = 5
    return config
