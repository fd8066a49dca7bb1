"""Convolutional VAE: Conv 1→16 s2, 16→32 s2, 32→64, 3136 → μ, log σ² (128) and mirror.

Init: PyTorch's defaults (init_scheme='pytorch'): the PyTorch architecture, whose reference in
benchmarks/throughput.py starts from them.
Run:    python train.py --config configs/conv_vae.py --workdir runs/conv_vae
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0216, SSIM 0.535, ELBO -268.7 nats (README results table, rerun 2026-12-04).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_vae", init_scheme="pytorch")
    config.loss = "bce"
    config.num_epochs = 5
    return config
