"""β-VAE (Higgins et al. 2017): the FC VAE with β=4, its KL weight warmed up over 500 steps.

Init: Flax's defaults (init_scheme='flax'), as `vae`.
Run:    python train.py --config configs/beta_vae.py --workdir runs/beta_vae
Sweep:  for b in 1 2 4 8; do python train.py --config configs/beta_vae.py \
            --workdir runs/beta_vae_$b --config.vae.beta=$b; done
Binarized data: --config.vae.binarize=dynamic (or static).
Expect: after --config.num_epochs=1 on Fashion-MNIST:
        test MSE 0.0240, ELBO -261.2, KL 6.9, NLL 251.2 nats.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vae")
    config.loss = "bce"
    config.vae.beta = 4.0
    config.vae.kl_warmup_steps = 500
    config.num_epochs = 5
    return config
