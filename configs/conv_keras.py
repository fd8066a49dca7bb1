"""The Keras-blog conv autoencoder: 4×4×8 code, UpSampling decoder, BCE loss (4,385 params).

Init: Keras's defaults (init_scheme='keras': Glorot-uniform kernels, zero biases), as the
Keras blog's code.
Run:    python train.py --config configs/conv_keras.py --workdir runs/conv_keras
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0222, SSIM 0.504 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_keras", init_scheme="keras")
    config.loss = "bce"
    config.num_epochs = 5
    return config
