"""The Keras-blog conv autoencoder: 4×4×8 code, UpSampling decoder, BCE loss (4,385 params).

Run:    python train.py --config configs/conv_keras.py --workdir runs/conv_keras
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0221, SSIM 0.509 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_keras")
    config.loss = "bce"
    config.num_epochs = 5
    return config
