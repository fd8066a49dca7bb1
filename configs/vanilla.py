"""Vanilla fully connected autoencoder 784→256→128→64 and mirror (484,944 params).

Run:    python train.py --config configs/vanilla.py --workdir runs/vanilla
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0186, SSIM 0.550 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vanilla")
    config.loss = "mse"
    config.num_epochs = 5
    return config
