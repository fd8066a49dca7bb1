"""VAE-GAN (Larsen et al. 2016): the conv VAE of configs/conv_vae.py with a conv critic on
images (stride-2 3×3 convs 32, 64, LeakyReLU) telling data from reconstructions and from
decoded N(0, I) codes.

The VAE keeps its ELBO and adds `adversarial.weight` × `adv_loss` (the non-saturating
−log D(x̃), summed over reconstructions and prior samples) and `adversarial.feature_weight`
× `disc_feature_loss`, Larsen's learned similarity: the mean squared difference of the critic's
last conv features of x and its reconstruction. The critic trains on `disc_loss` only.
Both updates run in one jitted step; the critic's parameters, Adam state and PRNG key are
part of the checkpointed train state.
Init: PyTorch's defaults (init_scheme='pytorch'), as configs/conv_vae.py.
Run:    python train.py --config configs/vae_gan.py --workdir runs/vae_gan
Measured (--config.num_steps=1000, Fashion-MNIST test): MSE 0.0205, PSNR 17.26, SSIM 0.523,
        NLL 259.1 nats, sharpness ratio 0.26 (high-frequency energy against the originals',
        jaxae.measures); configs/conv_vae.py at 1000 steps: MSE 0.0182, SSIM 0.588, NLL 249.1,
        sharpness 0.21. Sharper, at some pixel error and likelihood.
"""

from jaxae.config import default_config, model_config


def get_config():
    config = default_config()
    config.model = model_config("conv_vae", init_scheme="pytorch")
    config.loss = "bce"
    config.adversarial.kind = "image"
    config.adversarial.weight = 10.0
    config.adversarial.feature_weight = 100.0
    config.adversarial.prior_samples = True
    config.adversarial.learning_rate = 2e-4
    config.num_epochs = 5
    return config
