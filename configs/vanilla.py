"""Vanilla fully connected autoencoder 784→256→128→64 and mirror (484,944 params).

Init: PyTorch's defaults (init_scheme='pytorch'): the PyTorch tutorial architecture, whose
reference in benchmarks/throughput.py starts from them.
Run:    python train.py --config configs/vanilla.py --workdir runs/vanilla
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0234, SSIM 0.483 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vanilla", init_scheme="pytorch")
    config.loss = "mse"
    config.num_epochs = 5
    return config
