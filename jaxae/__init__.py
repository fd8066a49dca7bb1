"""jaxae: the autoencoder family in JAX/Flax."""

from jaxae.contractive import contractive_penalty

__all__ = ["contractive_penalty"]
