"""Deep conv autoencoder 28×28×1→3×3×64 with BatchNorm and transposed-conv decoder (83,905 params).

Run:    python train.py --config configs/conv_deep.py --workdir runs/conv_deep
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0107, SSIM 0.651 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_deep")
    config.loss = "mse"
    config.num_epochs = 5
    return config
