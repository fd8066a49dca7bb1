"""Hinton & Salakhutdinov (2006) 784→1000→500→250→30 autoencoder with a linear code.

Init: Flax's defaults (init_scheme='flax'): the paper's RBM initialisation is not reproduced.
Run:    python train.py --config configs/hinton.py --workdir runs/hinton
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0346, SSIM 0.396 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("hinton")
    config.loss = "mse"
    config.num_epochs = 5
    return config
