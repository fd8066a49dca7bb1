"""Sparse autoencoder (Ng): one sigmoid layer 784→196; β Σ_j KL(ρ ‖ ρ̂_j) pulls activations to ρ.

Init: PyTorch's defaults (init_scheme='pytorch'), as `contractive`'s same one-layer encoder, so
the two penalties are compared from the same start.
Run:    python train.py --config configs/sparse_kl.py --workdir runs/sparse_kl
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0662, SSIM 0.230, mean activation 0.062.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config(
        "vanilla", hidden=(), latent_dim=196, code_activation="sigmoid", init_scheme="pytorch"
    )
    config.loss = "mse"
    config.sparse.kl_beta = 0.01
    config.sparse.rho = 0.05
    config.num_epochs = 5
    return config
