"""Smallest conv autoencoder: Conv 1→16 + MaxPool / ConvTranspose 16→1 (225 params).

Run:    python train.py --config configs/conv_simple.py --workdir runs/conv_simple
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0154, SSIM 0.682 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_simple")
    config.loss = "mse"
    config.num_epochs = 5
    return config
