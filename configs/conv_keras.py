"""The Keras-blog conv autoencoder: 4×4×8 code, UpSampling decoder, BCE loss (4,385 params).

Run:    python train.py --config configs/conv_keras.py --workdir runs/conv_keras
Expect: see the results table in README.md for the test metrics after this budget.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_keras")
    config.loss = "bce"
    config.num_epochs = 5
    return config
