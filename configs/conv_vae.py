"""Convolutional VAE: Conv 1→16 s2, 16→32 s2, 32→64, 3136 → μ, log σ² (128) and mirror.

Run:    python train.py --config configs/conv_vae.py --workdir runs/conv_vae
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0259, SSIM 0.487, ELBO -270.3 nats (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_vae")
    config.loss = "bce"
    config.num_epochs = 5
    return config
