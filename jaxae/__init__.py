"""jaxae: the autoencoder family in JAX/Flax."""
