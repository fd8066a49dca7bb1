"""Adversarial autoencoder (Makhzani et al. 2015): vanilla FC autoencoder with an 8-D linear
code that an MLP critic (256-256, LeakyReLU) pushes towards N(0, I).

The critic tells prior draws from encoder codes (`disc_loss`, accuracies `disc_real` and
`disc_fake`); the encoder adds `adversarial.weight` × `adv_loss` (the non-saturating
−log D(z)) to its BCE. Both updates run in one jitted step; the critic's parameters, Adam
state and PRNG key are part of the checkpointed train state.
Init: Flax's defaults (init_scheme='flax').
Run:    python train.py --config configs/aae.py --workdir runs/aae
Measured (--config.num_steps=1500, Fashion-MNIST test): MSE 0.0175, PSNR 18.23, SSIM 0.578;
        code mean |μ| 0.055 and std 0.97-1.10 per dimension (N(0, I): 0 and 1), against
        |μ| 1.29 and std 1.14-3.29 with --config.adversarial.kind=none (MSE 0.0165, SSIM 0.597).
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("vanilla", latent_dim=8, code_activation="linear")
    config.loss = "bce"
    config.adversarial.kind = "code"
    config.adversarial.weight = 0.01
    config.adversarial.learning_rate = 2e-4
    config.num_epochs = 5
    return config
