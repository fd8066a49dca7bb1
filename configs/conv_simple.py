"""Smallest conv autoencoder: Conv 1→16 + MaxPool / ConvTranspose 16→1 (225 params).

Init: PyTorch's defaults (init_scheme='pytorch'): the PyTorch tutorial architecture, whose
reference in benchmarks/throughput.py starts from them.
Run:    python train.py --config configs/conv_simple.py --workdir runs/conv_simple
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0215, SSIM 0.641 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_simple", init_scheme="pytorch")
    config.loss = "mse"
    config.num_epochs = 5
    return config
