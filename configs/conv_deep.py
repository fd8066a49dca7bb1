"""Deep conv autoencoder 28×28×1→3×3×64 with BatchNorm and transposed-conv decoder (83,905 params).

Init: PyTorch's defaults (init_scheme='pytorch'): the PyTorch tutorial architecture, whose
reference in benchmarks/throughput.py starts from them.
Run:    python train.py --config configs/conv_deep.py --workdir runs/conv_deep
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0101, SSIM 0.671 (README results table, rerun 2026-12-04).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep", init_scheme="pytorch")
    config.loss = "mse"
    config.num_epochs = 5
    return config
