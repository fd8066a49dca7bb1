"""VQ-VAE (van den Oord et al. 2017): 7×7 grid of codes from a 64-vector codebook, MSE decoder.

Init: Flax's defaults (init_scheme='flax'); codebook uniform(-1/K, 1/K) as in the paper's code.
Run:    python train.py --config configs/vqvae.py --workdir runs/vqvae
Logs `codebook`, `commitment` (beta = vq.commitment = 0.25), `perplexity`, `codebook_usage`.
Baseline: the same encoder and decoder unquantized, --config.model.quantized=False.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vqvae")
    config.loss = "mse"
    config.vq.commitment = 0.25
    config.num_epochs = 5
    return config
