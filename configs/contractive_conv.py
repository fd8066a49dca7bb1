"""Contractive conv autoencoder: conv_flat (64-d code) with λ‖J_f(x)‖²_F by Hutchinson probes.

Init: Flax's defaults (init_scheme='flax'), as `conv_flat`.
Run:    python train.py --config configs/contractive_conv.py --workdir runs/contractive_conv
More probes (lower variance): --config.contractive.num_probes=4.
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0165, SSIM 0.569, ‖J‖²_F 1.58 per image.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_flat")
    config.loss = "mse"
    config.contractive.weight = 1e-3
    config.contractive.method = "hutchinson"
    config.contractive.num_probes = 1
    config.num_epochs = 5
    return config
