"""Conv autoencoder with a flat code: 28×28×1→14×14×32→7×7×64→64 and mirror.

Init: Flax's defaults (init_scheme='flax'): no framework's code to reproduce.
Run:    python train.py --config configs/conv_flat.py --workdir runs/conv_flat
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0128, SSIM 0.649 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_flat")
    config.loss = "mse"
    config.num_epochs = 5
    return config
