"""Denoising conv autoencoder (Keras blog): Gaussian noise σ=0.5 in, BCE to the clean image.

Init: Keras's defaults (init_scheme='keras': Glorot-uniform kernels, zero biases), as the
Keras blog's code and `conv_keras`.
Run:    python train.py --config configs/denoising.py --workdir runs/denoising
Sweep:  for s in 0.1 0.3 0.5; do python train.py --config configs/denoising.py \
            --workdir runs/denoising_s$s --config.denoise.sigma=$s; done
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0337, SSIM 0.443 (clean test inputs).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_keras", init_scheme="keras")
    config.loss = "bce"
    config.denoise.kind = "gaussian"
    config.denoise.sigma = 0.5
    config.num_epochs = 5
    return config
