"""Linear autoencoder 784→k→784 with no activations: learns the top-k PCA subspace.

Init: Flax's defaults (init_scheme='flax'): no framework's code to reproduce.
Run:    python train.py --config configs/linear.py --workdir runs/linear
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0307, SSIM 0.420 (README results table).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("linear")
    config.loss = "mse"
    config.num_epochs = 5
    return config
